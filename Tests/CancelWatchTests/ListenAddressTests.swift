import Foundation
import Testing
@testable import CancelWatch

/// `listen:` accepts only what the server can bind, refuses "every interface" written by
/// omission, and says out loud when metrics are served on every interface.
@Suite struct ListenAddressTests {
    /// With the status page's token: an address other machines can reach needs one.
    private func load(_ listen: String) throws(ConfigError) -> CancelWatchConfig {
        try CancelWatchConfig.parse(
            yaml: "listen: \(listen)\nauth: {token: 0123456789abcdef}\nsources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\n",
            path: "/etc/cancelwatch/cancelwatch.yaml", environment: [:])
    }

    private func diagnostic(_ listen: String) -> ConfigDiagnostic? {
        do {
            _ = try load(listen)
            return nil
        } catch {
            return error.diagnostics.first
        }
    }

    @Test func ipv4Ipv6AndLocalhostAreAcceptedAndBindToWhatTheyName() throws {
        #expect(try load("127.0.0.1:9464").listen == ListenAddress(host: "127.0.0.1", port: 9464))
        let v6 = try #require(try load("\"[::1]:9464\"").listen)
        #expect(v6.host == "::1" && v6.bindHost == "::1" && v6.description == "[::1]:9464")
        let local = try #require(try load("localhost:9464").listen)
        #expect(local.bindHost == "127.0.0.1" && local.port == 9464)
        #expect(try load("9464").listen?.bindHost == "127.0.0.1")
    }

    @Test func aBarePortAfterAColonIsRefusedWithLineColumnAndBothWaysToWriteIt() throws {
        let found = try #require(diagnostic("\":9464\""))
        #expect((found.line, found.column) == (1, 9))
        #expect(found.message.contains("127.0.0.1:9464") && found.message.contains("0.0.0.0:9464"), "\(found.message)")
    }

    @Test(arguments: ["example.com:9464", "my-host:9464", "\"[::1\"", "\"[fe80::zz]:9464\"", "\"::1:9464\"", "256.1.1.1:9464", "127.0.0.1:65536"])
    func anAddressTheServerCannotBindIsRefused(listen: String) throws {
        let found = try #require(diagnostic(listen), "\(listen) was accepted")
        #expect(found.line == 1 && found.message.contains("listen"), "\(found.message)")
    }

    @Test(arguments: ["0.0.0.0:9464", "\"[::]:9464\""])
    func everyInterfaceIsAcceptedWithAWarningThatMetricsArePublic(listen: String) throws {
        let config = try load(listen)
        #expect(config.listen?.servesEveryInterface == true)
        let warning = try #require(config.warnings.first)
        #expect((warning.line, warning.column) == (1, 9))
        #expect(warning.message.contains("public"), "\(warning.message)")
        #expect(try load("127.0.0.1:9464").warnings.isEmpty)
    }
}
