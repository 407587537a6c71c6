import ArgumentParser
import Sprout

SystemInfo.lineBufferStandardOutput()
// AsyncParsableCommand.main, spelled out: in top-level code the synchronous overload wins
// and refuses an asynchronous root command.
do {
    var command = try await SproutCommand.asyncParseAsRoot(nil)
    if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
} catch {
    SproutCommand.exit(withError: error)
}
