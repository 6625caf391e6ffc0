import CancelWatch
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import MarketSim
import Testing

/// The real binary with a telegram sink that has `actions:`, against the simulator's Telegram double.
@Suite struct TelegramButtonsEndToEndTests {
    @Test func onceSendsEachAlertToTelegramWithApproveAndRefuseNamingItsRequest() async throws {
        let setup = try WatchSetup.withTelegramSink(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let simulator = try setup.simulator

        let once = try await setup.command(["once", "--config", setup.configPath])
        #expect(once.status == 0, "once failed: \(once.stderr)")
        let status = try await setup.command(["status", "--config", setup.configPath, "--format", "json"])
        #expect(status.status == 0, "status failed: \(status.stderr)")
        let rows = try status.stdout.split(separator: "\n").map { try JSONParser.parse(Data($0.utf8)) }
        let tracked = rows.compactMap { row -> RequestKey? in
            guard let source = row["source"]?.stringValue, let id = row["id"]?.stringValue else { return nil }
            return RequestKey(source: source, id: id)
        }
        #expect(tracked.count == 3)

        let messages = simulator.telegram.allMessages()
        #expect(messages.count == 3)
        var named: Set<RequestKey> = []
        for message in messages {
            #expect(message.chatID == -1_001_234_567_890)
            #expect(message.buttons.map { $0.map(\.text) } == [["Approve", "Refuse"]])
            let data = message.callbackData.compactMap(TelegramCallbackData.init(parsing:))
            #expect(data.map(\.choice) == [.approve, .refuse])
            if let request = data.first?.request(among: tracked) { named.insert(request) }
        }
        #expect(named == Set(tracked), "each alert's buttons name its own request")
    }

    @Test func simulateServesTheTelegramDouble() async throws {
        let directory = try temporaryDirectory()
        let simulator = try await SimulatorProcess(directory: directory)
        var request = URLRequest(url: URL(string: "\(simulator.baseURL)/bot\(SimTelegramBot.defaultToken)/sendMessage")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"chat_id": 7, "text": "hello from the end-to-end test"}"#.utf8)
        let (body, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(try JSONParser.parse(body)["result"]?["text"] == "hello from the end-to-end test")
        let state = try #require(try await simulator.get("/_sim/telegram") as? [String: Any])
        let messages = try #require(state["messages"] as? [[String: Any]])
        #expect(messages.map { $0["text"] as? String } == ["hello from the end-to-end test"])
    }
}
