import CLibCurl
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request through libcurl's easy interface, with its built-in AWS SigV4 signing.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    /// Sent as an upload (a read callback), which is how curl's SigV4 signs a body correctly.
    public var body: [UInt8]?
    /// `aws:amz:REGION:s3` and `ACCESS_KEY:SECRET_KEY` for CURLOPT_AWS_SIGV4 / CURLOPT_USERPWD.
    public var sigV4: (provider: String, credentials: String)?
    public var timeoutSeconds: Int
    /// Asked about once a second and whenever data moves: true stops the transfer (the run was
    /// stopped), and `perform` throws an `HTTPError` whose `stoppedByCaller` is set.
    public var shouldStop: (@Sendable () -> Bool)?

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil,
                sigV4: (provider: String, credentials: String)? = nil, timeoutSeconds: Int = 300) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.sigV4 = sigV4
        self.timeoutSeconds = timeoutSeconds
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A transport failure (no HTTP status): DNS, refused or cut connection, timeout.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The request's `shouldStop` said stop.
    public var stoppedByCaller = false
    public var description: String { message }
}

public enum HTTPClient {
    private static let initialized: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    /// State the C callbacks reach through their user-data pointer.
    private final class Exchange {
        var upload: [UInt8]
        var uploaded = 0
        var received: [UInt8] = []
        var headers: [String: String] = [:]
        /// Streaming: the body goes here as it arrives (a 2xx answer only) instead of `received`;
        /// false stops the transfer.
        var sink: ((UnsafeRawBufferPointer) -> Bool)?
        var status = 0
        var handle: UnsafeMutableRawPointer?
        var stopped = false
        var shouldStop: (@Sendable () -> Bool)?
        var stoppedByCaller = false
        init(upload: [UInt8]) { self.upload = upload }
    }

    public static func perform(_ request: HTTPRequest) throws -> HTTPResponse {
        try perform(request, sink: nil)
    }

    /// A request whose successful (2xx) body is handed to `sink` piece by piece as it arrives,
    /// never held whole; `sink` may block to slow the sender down, and returns false to stop (the
    /// call then throws). Error answers are collected in the response's body as usual.
    public static func perform(_ request: HTTPRequest, sink: ((UnsafeRawBufferPointer) -> Bool)?) throws -> HTTPResponse {
        _ = initialized
        guard let handle = curl_easy_init() else { throw HTTPError(message: "curl_easy_init failed") }
        defer { curl_easy_cleanup(handle) }
        let exchange = Exchange(upload: request.body ?? [])
        exchange.sink = sink
        exchange.handle = handle
        let context = Unmanaged.passUnretained(exchange).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        _ = rgw_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = rgw_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = rgw_curl_setopt_long(handle, CURLOPT_TIMEOUT, request.timeoutSeconds)
        _ = rgw_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 30)
        if let sigV4 = request.sigV4 {
            _ = rgw_curl_setopt_string(handle, CURLOPT_AWS_SIGV4, sigV4.provider)
            _ = rgw_curl_setopt_string(handle, CURLOPT_USERPWD, sigV4.credentials)
        }
        _ = rgw_curl_setopt_write(handle) { data, size, count, user in
            let exchange = Unmanaged<Exchange>.fromOpaque(user!).takeUnretainedValue()
            let total = size * count
            guard let data else { return total }
            let bytes = UnsafeRawBufferPointer(start: data, count: total)
            if let sink = exchange.sink {
                if exchange.status == 0 {
                    var status = 0
                    _ = rgw_curl_getinfo_long(exchange.handle, CURLINFO_RESPONSE_CODE, &status)
                    exchange.status = status
                }
                if (200..<300).contains(exchange.status) {
                    guard sink(bytes) else {
                        exchange.stopped = true
                        return 0
                    }
                    return total
                }
            }
            exchange.received.append(contentsOf: bytes)
            return total
        }
        _ = rgw_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        _ = rgw_curl_setopt_header(handle) { data, size, count, user in
            let exchange = Unmanaged<Exchange>.fromOpaque(user!).takeUnretainedValue()
            let total = size * count
            if let data {
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: total), as: UTF8.self)
                if let colon = line.firstIndex(of: ":") {
                    let name = line[..<colon].lowercased()
                    let value = line[line.index(after: colon)...].trimmingCharacters()
                    exchange.headers[name] = value
                }
            }
            return total
        }
        _ = rgw_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        if let shouldStop = request.shouldStop {
            exchange.shouldStop = shouldStop
            _ = rgw_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            _ = rgw_curl_setopt_xferinfo(handle) { user, _, _, _, _ in
                let exchange = Unmanaged<Exchange>.fromOpaque(user!).takeUnretainedValue()
                guard exchange.shouldStop?() == true else { return 0 }
                exchange.stoppedByCaller = true
                return 1
            }
            _ = rgw_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
        }
        if request.body != nil || request.method == "PUT" || request.method == "POST" {
            _ = rgw_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
            _ = rgw_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(exchange.upload.count))
            _ = rgw_curl_setopt_read(handle) { buffer, size, count, user in
                let exchange = Unmanaged<Exchange>.fromOpaque(user!).takeUnretainedValue()
                let room = size * count
                let remaining = exchange.upload.count - exchange.uploaded
                let chunk = min(room, remaining)
                if chunk > 0, let buffer {
                    exchange.upload.withUnsafeBytes { raw in
                        UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + exchange.uploaded, byteCount: chunk)
                    }
                    exchange.uploaded += chunk
                }
                return chunk
            }
            _ = rgw_curl_setopt_pointer(handle, CURLOPT_READDATA, context)
            // An upload is a PUT to curl; the method line says what it really is. No 100-continue pause.
            list = curl_slist_append(list, "Expect:")
        }
        if request.method != "GET" && request.method != "PUT" {
            _ = rgw_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if request.method == "HEAD" { _ = rgw_curl_setopt_long(handle, CURLOPT_NOBODY, 1) }
        for header in request.headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        if let list { _ = rgw_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
        let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            _ = rgw_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(buffer.baseAddress!))
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            if exchange.stoppedByCaller { throw HTTPError(message: "the transfer was stopped", stoppedByCaller: true) }
            if exchange.stopped { throw HTTPError(message: "the transfer was stopped by its reader") }
            let detail = String(cString: errorBuffer)
            throw HTTPError(message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        }
        var status = 0
        _ = rgw_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: exchange.headers, body: exchange.received)
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
