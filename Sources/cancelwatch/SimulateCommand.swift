import ArgumentParser
import CancelWatch
import Foundation
import MarketSim

/// `cancelwatch simulate`: both marketplace APIs on loopback, until interrupted.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Runs the Ozon and Xiaohongshu simulator on 127.0.0.1.",
        discussion: """
            Prints 'cancelwatch simulator listening on http://127.0.0.1:PORT' first, then the \
            accounts and a config snippet. Control endpoints: GET /_sim/state, POST /_sim/faults, \
            POST /_sim/requests, POST /_sim/resolve, GET /_sim/counts, GET /_sim/config.
            """
    )

    @Option(name: .long, help: "The port to listen on (0: any free port).")
    var port: Int = 0

    @Option(name: .long, help: "A scenario JSON file (default: the built-in scenario).")
    var scenario: String?

    @Option(name: .long, help: "Stop after this long (e.g. 90s, 10m); default: until SIGINT or SIGTERM.")
    var duration: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        if let duration, DurationText.parse(duration) == nil {
            throw ValidationError("--duration: '\(duration)' is not a duration (like 90s, 10m, 1h)")
        }
    }

    func run() async throws {
        let signals = await StopSignals()
        let loaded: SimScenario
        if let scenario {
            do {
                loaded = try SimScenario.load(path: scenario)
            } catch {
                throw Self.failure("\(error)")
            }
        } else {
            loaded = .standard
        }
        let simulator: MarketSimulator
        do {
            simulator = try MarketSimulator(scenario: loaded, clock: SystemClock(), host: "127.0.0.1", port: port)
        } catch {
            throw Self.failure("cannot start the simulator: \(error)")
        }
        try await simulator.serving {
            // Whoever started the simulator reads its address here: a banner that cannot be
            // written ends the command (exit 1).
            try await CommandOutput.print("cancelwatch simulator listening on \(simulator.baseURL)")
            var banner = "\naccounts:\n"
            for line in loaded.accountSummary() { banner += "  " + line + "\n" }
            banner += "\nconfig snippet:\n" + simulator.configSourcesYAML() + "\n"
            banner += "telegram: a Bot API double, url: \"\(simulator.telegramURL("sendMessage"))\" (any numeric chat_id); "
                + "press its buttons with POST \(simulator.baseURL)/_sim/telegram/press\n"
            banner += "control: GET \(simulator.baseURL)/_sim/state, POST \(simulator.baseURL)/_sim/faults (Ctrl-C to stop)"
            try await CommandOutput.print(banner)

            let signal = await signals.first(orSeconds: duration.flatMap(DurationText.parse))
            if let signal {
                await CommandOutput.printError("cancelwatch simulator: \(signal), stopped")
            }
        }
    }

    /// A startup error: one line on stderr, exit 1.
    static func failure(_ message: String) -> CleanExit {
        CleanExit.message("cancelwatch simulate: error: \(message)", exitCode: 1)
    }
}
