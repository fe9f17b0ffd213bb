import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The text of chosen elements of an XML document, in document order.
struct XMLFields {
    private var values: [String: [String]] = [:]

    init(_ data: [UInt8], names: Set<String>) {
        let collector = Collector(names: names)
        let parser = XMLParser(data: Data(data))
        parser.delegate = collector
        parser.parse()
        values = collector.values
    }

    func first(_ name: String) -> String? { values[name]?.first }
    func all(_ name: String) -> [String] { values[name] ?? [] }

    private final class Collector: NSObject, XMLParserDelegate {
        let names: Set<String>
        var values: [String: [String]] = [:]
        var current: String?
        var text = ""
        init(names: Set<String>) { self.names = names }

        func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if names.contains(element) { current = element; text = "" }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { if current != nil { text += string } }
        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            if element == current { values[element, default: []].append(text); current = nil }
        }
    }
}
