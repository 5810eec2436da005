import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 (a port the system picks) for download tests: one request per
/// connection, answered by a handler that can serve byte ranges, drop the connection part way, send slowly,
/// redirect or fail. It only ever listens on the loopback address and stops with `stop()` (or when released).
public final class LoopbackHTTPServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names in lower case.
        public var headers: [String: String]
    }

    /// What to send back.
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
        /// Close the connection after this many body bytes (the headers still announce the whole body).
        public var dropAfter: Int?
        /// Send the body in chunks of this many bytes, waiting `delay` seconds before each.
        public var chunk: Int
        public var delay: TimeInterval

        public init(status: Int, headers: [(String, String)] = [], body: Data = Data(), dropAfter: Int? = nil,
                    chunk: Int = 64 * 1024, delay: TimeInterval = 0) {
            self.status = status
            self.headers = headers
            self.body = body
            self.dropAfter = dropAfter
            self.chunk = chunk
            self.delay = delay
        }

        /// `data` as a file: honours `Range: bytes=N-` with a 206 when `ranges` is true, else always 200.
        public static func file(_ data: Data, for request: Request, ranges: Bool = true, etag: String = "\"fixture-1\"",
                                dropAfter: Int? = nil, chunk: Int = 64 * 1024, delay: TimeInterval = 0) -> Reply {
            var headers: [(String, String)] = [("Content-Type", "application/octet-stream"), ("ETag", etag)]
            if ranges { headers.append(("Accept-Ranges", "bytes")) }
            if ranges, let range = request.headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
               let start = Int(range.dropFirst(6).dropLast()), start < data.count,
               request.headers["if-range"].map({ $0 == etag }) ?? true {
                headers.append(("Content-Range", "bytes \(start)-\(data.count - 1)/\(data.count)"))
                return Reply(status: 206, headers: headers, body: data.subdata(in: start ..< data.count), dropAfter: dropAfter,
                             chunk: chunk, delay: delay)
            }
            return Reply(status: 200, headers: headers, body: data, dropAfter: dropAfter, chunk: chunk, delay: delay)
        }

        public static func redirect(to location: String) -> Reply {
            Reply(status: 302, headers: [("Location", location)])
        }

        public static func status(_ code: Int) -> Reply {
            Reply(status: code, headers: [("Content-Type", "text/plain")], body: Data("status \(code)\n".utf8))
        }
    }

    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private let listener: Int32
    private let handler: @Sendable (Request) -> Reply
    private let lock = NSLock()
    private var log: [Request] = []
    private var stopped = false

    /// Every request received so far, in order.
    public var requests: [Request] { lock.withLock { log } }

    public init(handler: @escaping @Sendable (Request) -> Reply) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        listener = fd
        let t = Thread { [weak self] in self?.acceptLoop() }
        t.start()
    }

    deinit { stop() }

    public func stop() {
        let first: Bool = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    private func acceptLoop() {
        while true {
            let conn = accept(listener, nil, nil)
            if conn < 0 { return }
            if lock.withLock({ stopped }) { close(conn); return }
            let t = Thread { [self] in serve(conn) }
            t.start()
        }
    }

    private func serve(_ conn: Int32) {
        defer { close(conn) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !buffer.containsHeaderEnd {
            let n = recv(conn, &chunk, chunk.count, 0)
            if n <= 0 || buffer.count > 64 * 1024 { return }
            buffer.append(contentsOf: chunk[0 ..< n])
        }
        let text = String(decoding: buffer, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let first = lines[0].split(separator: " ")
        guard first.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(method: String(first[0]), path: String(first[1]), headers: headers)
        lock.withLock { log.append(request) }
        let reply = handler(request)
        var head = "HTTP/1.1 \(reply.status) \(reply.status < 300 ? "OK" : reply.status < 400 ? "Found" : "Error")\r\n"
        for (k, v) in reply.headers { head += "\(k): \(v)\r\n" }
        head += "Content-Length: \(reply.body.count)\r\nConnection: close\r\n\r\n"
        guard sendAll(conn, Data(head.utf8)) else { return }
        if request.method == "HEAD" { return }
        let limit = min(reply.body.count, reply.dropAfter ?? reply.body.count)
        var sent = 0
        while sent < limit {
            if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
            if lock.withLock({ stopped }) { return }
            let end = min(limit, sent + max(1, reply.chunk))
            guard sendAll(conn, reply.body.subdata(in: sent ..< end)) else { return }
            sent = end
        }
    }

    private func sendAll(_ conn: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(conn, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }
}

private extension [UInt8] {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0 ... (count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return true }
        return false
    }
}
