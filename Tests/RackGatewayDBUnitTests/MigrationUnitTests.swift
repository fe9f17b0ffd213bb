import Foundation
import Testing
@testable import RackGatewayDB

@Suite("Migration files (no server)")
struct MigrationUnitTests {
    @Test(arguments: [
        ("20250101000000_extensions.sql", "20250101000000", "extensions"),
        ("20260301123000_add_widgets_2.sql", "20260301123000", "add_widgets_2"),
    ])
    func parsesGoodNames(file: String, version: String, name: String) {
        let parsed = Migration.parseFileName(file)
        #expect(parsed?.version == version)
        #expect(parsed?.name == name)
    }

    @Test(arguments: ["2025_x.sql", "20250101000000.sql", "20250101000000_.sql", "20250101000000_Bad-Name.sql", "20250101000000_x.txt"])
    func rejectsBadNames(file: String) {
        #expect(Migration.parseFileName(file) == nil)
    }

    @Test func embeddedCopyEqualsTheMigrationsDirectory() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("migrations")
        let onDisk = try MigrationSet.load(directory: directory)
        #expect(onDisk.migrations.count >= 5)
        #expect(onDisk.migrations == MigrationSet.embedded.migrations,
                "migrations/ changed: run scripts/embed-migrations")
    }

    @Test func duplicateVersionsAreRefused() {
        #expect(throws: ToolError.self) {
            try MigrationSet(migrations: [
                Migration(version: "20250101000000", name: "a", sql: ""),
                Migration(version: "20250101000000", name: "b", sql: ""),
            ], origin: "test")
        }
    }

    @Test func lineNumberOfAPosition() {
        let text = "SELECT 1;\nSELECT ñ;\nSELEC 3;"
        #expect(Migrator.lineNumber(ofCharacter: 1, in: text) == 1)
        #expect(Migrator.lineNumber(ofCharacter: 21, in: text) == 3)
    }

    @Test func pgDumpVersionParsing() {
        #expect(PostgresTools.parseVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n")! == ("15.18", 15))
        #expect(PostgresTools.parseVersion("pg_dump (PostgreSQL) 17beta1")! == ("17", 17))
        #expect(PostgresTools.parseVersion("something else") == nil)
    }
}
