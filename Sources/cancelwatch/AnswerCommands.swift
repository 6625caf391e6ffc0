import ArgumentParser
import CancelWatch
import Foundation
import Logging

struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a pending cancellation request: the order is cancelled and the buyer refunded.",
        discussion: AnswerArguments.discussion)

    @OptionGroup var config: ConfigOption
    @OptionGroup var arguments: AnswerArguments

    @Option(help: "A comment for the marketplace (optional).")
    var comment: String = ""

    func run() async throws {
        try await reportingErrors { try await arguments.send(.approve, comment: comment, config: config) }
    }
}

struct RefuseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refuse",
        abstract: "Refuse a pending cancellation request: the order stands and must be delivered.",
        discussion: AnswerArguments.discussion)

    @OptionGroup var config: ConfigOption
    @OptionGroup var arguments: AnswerArguments

    @Option(help: "The reason, passed on to the marketplace (required).")
    var comment: String

    func run() async throws {
        try await reportingErrors { try await arguments.send(.refuse, comment: comment, config: config) }
    }
}

/// What `approve` and `refuse` share: the request named, the confirmation, the safe path.
struct AnswerArguments: ParsableArguments {
    static let discussion = """
        ID is the request's id as `cancelwatch status --format json` prints it (Ozon: the cancellation id; \
        Xiaohongshu: package_id@cancel_time). The marketplace is asked for the request's current state first: \
        only a request pending now and before its deadline is answered. The answer is recorded in the state \
        before it is sent, and never sent twice. On a terminal the request is shown and you are asked to \
        confirm; elsewhere --yes is required. Exit status 0 only when the marketplace accepted the answer.
        """

    @Argument(help: "The source (account) name in the config.")
    var source: String

    @Argument(help: "The request's id, as `status --format json` prints it.")
    var id: String

    @Flag(help: "Answer without asking.")
    var yes = false

    func send(_ decision: Decision, comment: String, config option: ConfigOption) async throws {
        let answer: Answer
        do {
            answer = try Answer(decision, comment: comment)
        } catch {
            throw CleanExit.message("error: \(error.description)", exitCode: 1)
        }
        let interactive = isatty(STDIN_FILENO) == 1 && isatty(STDERR_FILENO) == 1
        guard yes || interactive else {
            throw CleanExit.message(
                "error: not answering \(source) request \(TerminalText.escaped(id, limit: 200)): no terminal to confirm on; add --yes to answer without asking",
                exitCode: 1)
        }
        let config = try option.load()
        var logger = Logger(label: "cancelwatch")
        logger.logLevel = .error
        let clock = SystemClock()
        let transport = CurlHTTPTransport(threads: 2)
        let clients = config.sources.map { $0.makeClient(transport: transport, clock: clock) }
        if !yes {
            // Shown and confirmed on the state opened for reading: no lock is held while a person thinks.
            let reading = try await Self.open(config, access: .read)
            let answerer = Answerer(store: reading.store, clients: clients, clock: clock, logger: logger)
            switch await answerer.prepare(source: source, id: id) {
            case .failure(let stop):
                let result = AnswerResult(source: source, id: id, request: nil, answer: answer, kind: .notSent(stop))
                throw CleanExit.message("error: \(TerminalText.escaped(result.line, limit: 2000))", exitCode: 1)
            case .success(let request):
                await CommandOutput.printError(Self.summary(of: request, answer: answer, now: clock.now(), timeZone: config.timezone))
                guard await Self.confirmed() else { throw CleanExit.message("not answered", exitCode: 1) }
            }
        }
        let state = try await Self.open(config, access: .answer)
        let answerer = Answerer(store: state.store, clients: clients, clock: clock, logger: logger)
        let result = await answerer.answer(source: source, id: id, with: answer, by: AnswerActor(.cli, Self.userName))
        let line = TerminalText.escaped(result.line, limit: 2000)
        guard result.accepted else { throw CleanExit.message("error: \(line)", exitCode: 1) }
        try await CommandOutput.print(line)
    }

    /// The store `config` names, opened off the cooperative pool; a failure is one line.
    static func open(_ config: CancelWatchConfig, access: SQLiteStateStore.Access) async throws -> ConfiguredState {
        try await BlockingWorkers.shared.run { () throws -> ConfiguredState in
            do throws(StoreError) {
                return try ConfiguredState.open(config, access: access)
            } catch {
                throw CleanExit.message("error: \(error.description)", exitCode: 1)
            }
        }
    }

    /// The request as a person confirms it: what it is, why, who asked, and the time left.
    static func summary(of request: CancellationRequest, answer: Answer, now: Date, timeZone: TimeZone) -> String {
        let formatter = StatusView.dateFormatter(timeZone)
        func text(_ value: String) -> String { value.isEmpty ? "-" : StatusView.oneLine(value, limit: 200) }
        var lines = [
            "\(request.marketplace.rawValue) \(StatusView.oneLine(request.source)) request \(StatusView.oneLine(request.id))",
            "  order      \(text(request.order))",
            "  reason     \(text(request.reason))",
            "  initiator  \(text(request.initiator))",
            "  deadline   \(formatter.string(from: request.deadline)) (\(timeZone.identifier)), \(DurationText.format(request.remaining(at: now))) left",
        ]
        if !answer.comment.isEmpty { lines.append("  comment    \(text(answer.comment))") }
        switch answer.decision {
        case .approve: lines.append("Approve this cancellation (the order is cancelled and the buyer refunded)? [y/N] ")
        case .refuse: lines.append("Refuse this cancellation (the order stands and must be delivered)? [y/N] ")
        }
        return lines.joined(separator: "\n")
    }

    /// Reads one line from the terminal (off the cooperative pool): yes only for "y" or "yes".
    static func confirmed() async -> Bool {
        let line = await BlockingWorkers.shared.run { _ in readLine(strippingNewline: true) }
        guard let line else { return false }
        return ["y", "yes"].contains(line.trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Who answers from the command line: the user the process runs as.
    static var userName: String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid \(geteuid())"
    }
}
