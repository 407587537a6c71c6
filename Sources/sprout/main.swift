import ArgumentParser
import Sprout

SystemInfo.lineBufferStandardOutput()
SproutCommand.main()
