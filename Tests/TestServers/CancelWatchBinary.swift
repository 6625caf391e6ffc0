import Foundation

/// The real `cancelwatch` binary, built beside the running test bundle or benchmark.
public enum CancelWatchBinary {
    public static var url: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // `swift test` runs the bundle from the build directory; some runners pass a path inside the bundle.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("cancelwatch").path),
            directory.path != "/"
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("cancelwatch")
    }
}
