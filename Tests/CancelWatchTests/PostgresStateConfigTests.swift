import Foundation
import Testing

@testable import CancelWatch

/// `state: postgres://USER:${VAR}@HOST:PORT/DB?sslmode=MODE` names a PostgreSQL state:
/// every part read and checked, the password only from a variable and never shown.
@Suite struct PostgresStateConfigTests {
    static let password = "s3cr3t-P@ss/w:rd?#"

    func load(_ state: String, environment: [String: String] = ["CW_DB_PASSWORD": password]) throws(ConfigError) -> CancelWatchConfig {
        try CancelWatchConfig.parse(
            yaml: "state: \"\(state)\"\nsources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\n",
            path: "/etc/cw/cancelwatch.yaml", environment: environment)
    }

    /// Everything a user sees of the config or of why it was refused.
    func everything(_ state: String, environment: [String: String] = ["CW_DB_PASSWORD": password]) -> String {
        do {
            let config = try load(state, environment: environment)
            return String(reflecting: config) + "\n" + config.state + "\n" + String(describing: config.stateDatabase)
        } catch {
            return error.description + "\n" + error.headlines
        }
    }

    @Test func everyPartOfThePostgresURLIsRead() throws {
        let config = try load("postgres://watcher:${CW_DB_PASSWORD}@db.example.com:6432/cancelwatch?sslmode=verify-full")
        let database = try #require(config.stateDatabase)
        #expect(database.user == "watcher")
        #expect(database.password?.value == Self.password)
        #expect(database.host == "db.example.com")
        #expect(database.port == 6432)
        #expect(database.database == "cancelwatch")
        #expect(database.sslMode == .verifyFull)
        #expect(config.state == "postgres://watcher@db.example.com:6432/cancelwatch?sslmode=verify-full")
    }

    @Test func withoutPortPasswordOrSSLModeItIsPort5432NoPasswordAndPrefer() throws {
        let database = try #require(try load("postgresql://watcher@127.0.0.1/cw").stateDatabase)
        #expect(database.port == 5432)
        #expect(database.password == nil)
        #expect(database.sslMode == .prefer)
    }

    @Test(arguments: PostgresLocation.SSLMode.allCases)
    func eachSSLModeIsHonoured(mode: PostgresLocation.SSLMode) throws {
        #expect(try load("postgres://w@db:5432/cw?sslmode=\(mode.rawValue)").stateDatabase?.sslMode == mode)
    }

    @Test func anIPv6HostIsWrittenInBrackets() throws {
        let database = try #require(try load("postgres://w@[::1]:5433/cw").stateDatabase)
        #expect(database.host == "::1" && database.port == 5433)
        #expect(database.description == "postgres://w@[::1]:5433/cw?sslmode=prefer")
    }

    @Test func aFileStateIsNoDatabase() throws {
        let config = try load("./state.sqlite")
        #expect(config.stateDatabase == nil)
        #expect(config.state == "/etc/cw/state.sqlite")
    }

    @Test(arguments: [
        ("postgres://w@db:5432/cw?sslmode=allow", "sslmode must be one of disable, prefer, require, verify-full"),
        ("postgres://w@db:5432/cw?sslmode=require&application_name=x", "unknown parameter 'application_name'"),
        ("postgres://w@db:5432", "the database is missing"),
        ("postgres://w@db:5432/", "the database is missing"),
        ("postgres://db:5432/cw", "the user is missing"),
        ("postgres://w@db:0/cw", "the port must be a number from 1 to 65535"),
        ("postgres://w@db:65536/cw", "the port must be a number from 1 to 65535"),
        ("postgres://w@db:port/cw", "the port must be a number from 1 to 65535"),
        ("postgres://w@:5432/cw", "the host is missing"),
    ])
    func aWrongURLIsRefusedNamingTheStateAndWhatToWrite(url: String, reason: String) {
        let text = everything(url)
        #expect(text.contains("invalid 'state'"), "\(text)")
        #expect(text.contains(reason), "\(text)")
    }

    @Test func aPasswordWrittenInTheFileIsRefusedAndNeverShown() {
        let text = everything("postgres://w:\(Self.password.prefix(8))@db:5432/cw")
        #expect(text.contains("invalid 'state'"), "\(text)")
        #expect(text.contains("the password must come from the environment"), "\(text)")
        #expect(!text.contains(Self.password.prefix(8)), "\(text)")
    }

    @Test func aPasswordFromAnUnsetVariableIsAnErrorNamingIt() {
        let text = everything("postgres://w:${CW_DB_PASSWORD}@db:5432/cw", environment: [:])
        #expect(text.contains("environment variable 'CW_DB_PASSWORD' is not set (used by 'state'"), "\(text)")
    }

    @Test func thePasswordIsNeverShownWhetherTheConfigLoadsOrNot() {
        let loaded = everything("postgres://w:${CW_DB_PASSWORD}@db:5432/cw?sslmode=require")
        #expect(loaded.contains("db:5432"), "\(loaded)")
        let refused = everything("postgres://w:${CW_DB_PASSWORD}@db:5432/cw?sslmode=sometimes")
        #expect(refused.contains("invalid 'state'"), "\(refused)")
        for text in [loaded, refused] {
            #expect(!text.contains(Self.password), "\(text)")
            #expect(!text.contains("s3cr3t"), "\(text)")
        }
    }
}
