import Foundation
import Testing
import TestServers

/// README.md's "Layout" lists every folder of the repository, and only those.
@Suite struct ReadmeLayoutTests {
    /// The folders the layout names: a line indented deeper than the one above it names a
    /// folder inside that one (`Sources/CancelWatch/` then `  Model/`).
    static func listedFolders(readme: String) throws -> [String] {
        let lines = readme.components(separatedBy: "\n")
        let heading = try #require(lines.firstIndex(of: "## Layout"))
        var folders: [String] = []
        var enclosing: [(indent: Int, path: String)] = []
        for line in lines[(heading + 1)...] {
            if line.hasPrefix("#") { break }
            guard line.hasPrefix("    "), let name = line.split(separator: " ").first, name.hasSuffix("/") else { continue }
            let indent = line.prefix { $0 == " " }.count
            while let last = enclosing.last, last.indent >= indent { enclosing.removeLast() }
            let path = (enclosing.last?.path ?? "") + name
            folders.append(path)
            enclosing.append((indent, path))
        }
        return folders
    }

    /// The folders that hold a file git tracks, each ending in "/".
    static func trackedFolders() async throws -> Set<String> {
        let root = RulesFixture.packageRoot.path
        let files = try await offPool { try runToEnd("/usr/bin/env", ["git", "-C", root, "ls-files"]) }
        var folders: Set<String> = []
        for file in files.split(separator: "\n") {
            var parts = file.split(separator: "/").dropLast()
            while !parts.isEmpty {
                folders.insert(parts.joined(separator: "/") + "/")
                parts = parts.dropLast()
            }
        }
        return folders
    }

    @Test func theLayoutListsEveryFolderOfTheRepositoryOnce() async throws {
        let readme = try String(contentsOf: RulesFixture.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let listed = try Self.listedFolders(readme: readme)
        let tracked = try await Self.trackedFolders()
        #expect(tracked.contains("Sources/CancelWatch/Model/"))  // git answered, and paths read as the layout writes them
        #expect(listed.count == Set(listed).count, "a folder is listed twice")
        // `Sources/CancelWatch/` lists `Sources/` too.
        let named = Set(listed.flatMap { path in
            path.split(separator: "/").indices.map { path.split(separator: "/")[...$0].joined(separator: "/") + "/" }
        })
        #expect(tracked.subtracting(named).sorted() == [], "folders the layout does not list")
        #expect(Set(listed).subtracting(tracked).sorted() == [], "listed folders that do not exist")
    }

    @Test func aNestedLineNamesAFolderInsideTheOneAboveIt() throws {
        let readme = """
            ## Layout

                Sources/A/        a
                  B/              b
                    C/            c
                  D/              d
                tests/            t
                file.txt          not a folder

            ## Next

                Elsewhere/        not in the layout
            """
        #expect(try Self.listedFolders(readme: readme) == ["Sources/A/", "Sources/A/B/", "Sources/A/B/C/", "Sources/A/D/", "tests/"])
    }
}
