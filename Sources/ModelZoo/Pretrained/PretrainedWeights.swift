import Foundation

/// One file of a catalogue entry's published weights, pinned in the entry's YAML (`weights.files`).
public struct WeightsFile: Sendable, Codable, Equatable {
    /// The file's name in the cache (yolov8n.pt, model.safetensors, config.json).
    public var name: String
    /// Where the publisher serves it.
    public var url: String
    /// Its size in bytes, if the publisher's metadata gives it; else recorded at the first download.
    public var size: Int64?
    /// Its SHA-256 (lower-case hex), if published; else recorded at the first download (trust on first use).
    public var sha256: String?
    /// Where the url, size and hash came from.
    public var source: String?

    public init(name: String, url: String, size: Int64? = nil, sha256: String? = nil, source: String? = nil) {
        self.name = name
        self.url = url
        self.size = size
        self.sha256 = sha256
        self.source = source
    }
}

/// A catalogue entry's `weights:` block: the published, trained weights of the entry (its files), or a note
/// saying that its authors publish none.
public struct PretrainedWeights: Sendable, Codable, Equatable {
    /// Who publishes them, as a person reads it ("github.com/ultralytics/assets, release v8.3.0").
    public var publisher: String?
    /// The pinned revision (a release tag or a Hub commit), if any.
    public var revision: String?
    /// What the classes are ("COCO, 80 classes"); the names come with the files.
    public var classes: String?
    /// The files, in download order; empty when nothing is published.
    public var files: [WeightsFile]
    /// Why there are none, or anything else a user should know.
    public var note: String?

    public init(publisher: String? = nil, revision: String? = nil, classes: String? = nil, files: [WeightsFile] = [], note: String? = nil) {
        self.publisher = publisher
        self.revision = revision
        self.classes = classes
        self.files = files
        self.note = note
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        publisher = try c.decodeIfPresent(String.self, forKey: .publisher)
        revision = try c.decodeIfPresent(String.self, forKey: .revision)
        classes = try c.decodeIfPresent(String.self, forKey: .classes)
        files = try c.decodeIfPresent([WeightsFile].self, forKey: .files) ?? []
        note = try c.decodeIfPresent(String.self, forKey: .note)
    }

    /// Whether there is anything to download.
    public var isPublished: Bool { !files.isEmpty }

    /// The sum of the pinned sizes, nil if any is unknown.
    public var totalSize: Int64? {
        var sum: Int64 = 0
        for f in files {
            guard let s = f.size else { return nil }
            sum += s
        }
        return sum
    }

    /// The host and path prefix a person recognises ("github.com/ultralytics/assets", "huggingface.co/SenseTime/deformable-detr").
    public var sourceLabel: String {
        if let publisher { return publisher }
        guard let first = files.first, let url = URL(string: first.url), let host = url.host else { return "unknown" }
        let parts = url.path.split(separator: "/").prefix(2)
        return ([host] + parts.map(String.init)).joined(separator: "/")
    }
}

/// Formats a byte count the way download tools do (6.2 MB, 136.7 MB, 512 B; powers of 1000).
public func formatBytes(_ n: Int64) -> String {
    let v = Double(n)
    if v < 1000 { return "\(n) B" }
    if v < 1e6 { return String(format: "%.1f kB", v / 1e3) }
    if v < 1e9 { return String(format: "%.1f MB", v / 1e6) }
    return String(format: "%.2f GB", v / 1e9)
}
