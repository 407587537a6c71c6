import ArgumentParser
import Sprout

SproutCommand.main()
