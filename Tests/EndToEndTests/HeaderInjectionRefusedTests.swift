import Foundation
import Testing

/// The real binary refuses an API key with a CRLF, from the environment or written with
/// YAML escapes: `check` and `run` exit 1 naming the field at its line and column, and
/// never show the value. On deb1852 both accepted it, and `run` sent the extra header.
@Suite struct HeaderInjectionRefusedTests {
    @Test(arguments: [
        (#"api_key: "${OZON_API_KEY}""#, ["OZON_API_KEY": "e2e-key\r\nX-Injected: yes"]),
        (#"api_key: "e2e-key\r\nX-Injected: yes""#, [:]),
    ])
    func checkAndRunRefuseAnAPIKeyWithCRLF(written: String, environment: [String: String]) async throws {
        var options = WatchOptions()
        options.red = false
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let config = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        let original = "api_key: \"\(E2EAccounts.ozonKey)\""
        #expect(config.contains(original))
        try config.replacingOccurrences(of: original, with: written).write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let line = try #require(config.components(separatedBy: "\n").firstIndex { $0.contains(original) }) + 1

        for command in ["check", "run"] {
            let result = try await setup.capture([command, "--config", setup.configPath], environment: environment, timeout: 30)
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("cancelwatch.yaml:\(line):"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("'api_key' in source 'ozon' holds a control character, CR (U+000D)"), "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("X-Injected"), "\(command): \(result.stderr)")
        }
    }
}
