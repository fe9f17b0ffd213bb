import ArgumentParser
import Foundation
import Postgres
import RackGatewayDB

/// Output and the one place that turns errors into exit statuses.
enum Reporting {
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        // The same keys as drills.jsonl, restores.jsonl and the manifest.
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data("rack-gateway-db: error: \(text)\n".utf8))
    }

    /// Run a command body; expected errors print one clear message and exit with their status.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError(String(describing: error))
            throw ExitCode(exitStatus(for: error))
        }
    }

    static func exitStatus(for error: Error) -> Int32 {
        switch error {
        case let error as ToolError:
            switch error.category {
            case .failed: return 1
            case .mismatch: return 2
            case .locked: return 3
            case .usage: return 64
            }
        case let error as PostgresError:
            return error.kind == .malformedConnectionString ? 64 : 1
        case is ValidationError:
            // An option found wrong only in run() (a default that falls outside its range) is still usage.
            return 64
        default:
            return 1
        }
    }
}
