import AsyncHTTPClient
import CompressNIO
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Registry

/// `pierone inspect-contents`: the files of an image's top layers, each layer streamed through
/// gunzip and a tar reader (never held whole).
extension PierOneClient {
    package struct LayerFile: Codable, Sendable, Equatable {
        /// 0 = the top layer.
        package var layer: Int
        package var digest: String
        /// `file`, `directory`, `symlink`, `hardlink`, or the tar type flag.
        package var type: String
        package var mode: String
        package var size: Int64
        package var name: String
        package var modified: String
    }

    /// Bytes of one layer read so far (for a progress line).
    package typealias Progress = @Sendable (_ layer: Int, _ layers: Int, _ bytes: Int64, _ total: Int64) -> Void

    /// The files of the top `limit` layers of `team/artifact:tag` (for an index: the
    /// `linux/amd64` image, else its first one).
    package func layerContents(
        _ team: String, _ artifact: String, _ tag: String, limit: Int, progress: Progress? = nil
    ) async throws -> [LayerFile] {
        let repository = "\(Self.segment(team))/\(Self.path(artifact))"
        var manifest = try await self.manifest(repository, reference: Self.segment(tag), name: "\(team)/\(artifact):\(tag)")
        if let children = manifest.manifests {
            let chosen = children.first { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" } ?? children.first
            guard let chosen else { throw LoginFailure("\(team)/\(artifact):\(tag) is an empty index") }
            manifest = try await self.manifest(repository, reference: chosen.digest, name: "\(team)/\(artifact)@\(chosen.digest)")
        }
        guard let layers = manifest.layers, !layers.isEmpty else { throw LoginFailure("\(team)/\(artifact):\(tag) has no layers") }
        let top = Array(layers.reversed().prefix(max(1, limit)))
        var files: [LayerFile] = []
        let formatter = ISO8601DateFormatter()
        for (index, layer) in top.enumerated() {
            let gzip = !(layer.mediaType ?? "").hasSuffix(".tar") && !(layer.mediaType ?? "").hasSuffix("tar")
            try await self.listLayer(repository, layer, gzip: gzip) { bytes in
                progress?(index, top.count, bytes, layer.size ?? 0)
            } entries: { entries in
                guard files.count + entries.count <= Self.maximumFiles else {
                    throw LoginFailure("the top \(top.count) layers hold more than \(Self.maximumFiles) entries: list fewer layers (-l)")
                }
                files += entries.map { entry in
                    LayerFile(
                        layer: index, digest: layer.digest, type: Self.typeName(entry.type), mode: String(format: "%04o", entry.mode),
                        size: entry.size, name: entry.link.isEmpty ? entry.name : "\(entry.name) -> \(entry.link)",
                        modified: formatter.string(from: Date(timeIntervalSince1970: TimeInterval(entry.modified)))
                    )
                }
            }
        }
        return files
    }

    /// Most entries listed (a layer of empty files inflates ~1000:1).
    static let maximumFiles = 1_000_000

    static func typeName(_ flag: UInt8) -> String {
        switch flag {
        case UInt8(ascii: "0"), UInt8(ascii: "7"): "file"
        case UInt8(ascii: "5"): "directory"
        case UInt8(ascii: "2"): "symlink"
        case UInt8(ascii: "1"): "hardlink"
        default: String(UnicodeScalar(flag))
        }
    }

    struct Manifest: Decodable {
        struct Layer: Decodable {
            var digest: String
            var mediaType: String?
            var size: Int64?
        }
        struct Child: Decodable {
            struct Platform: Decodable {
                var os: String?
                var architecture: String?
            }
            var digest: String
            var platform: Platform?
        }
        var layers: [Layer]?
        var manifests: [Child]?
    }

    private func manifest(_ repository: String, reference: String, name: String) async throws -> Manifest {
        var request = HTTPClientRequest(url: "\(self.base)/v2/\(repository)/manifests/\(reference)")
        self.authorize(&request)
        request.headers.add(
            name: "Accept",
            value: [
                "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
            ].joined(separator: ", ")
        )
        let response = try await self.send(request)
        let body = try await response.body.collect(upTo: 4 << 20)
        if response.status.code == 404 { throw LoginFailure("\(name) does not exist") }
        try self.check(Int(response.status.code), body, notFound: "\(name) does not exist", repository: repository)
        do {
            return try JSONDecoder().decode(Manifest.self, from: Data(buffer: body))
        } catch {
            throw LoginFailure("the manifest of \(name) is not an image manifest or index")
        }
    }

    /// Streams one layer through gunzip (unless `gzip` is false) into a tar listing.
    private func listLayer(
        _ repository: String, _ layer: Manifest.Layer, gzip: Bool, read: (Int64) -> Void, entries: ([TarReader.Entry]) throws -> Void
    ) async throws {
        var request = HTTPClientRequest(url: "\(self.base)/v2/\(repository)/blobs/\(layer.digest)")
        self.authorize(&request)
        let response = try await self.send(request)
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            try self.check(Int(response.status.code), body, notFound: "the layer \(layer.digest) is missing", repository: repository)
            throw LoginFailure("the layer \(layer.digest) answered \(response.status.code)")
        }
        var reader = TarReader(listing: ())
        let decompressor: (any NIODecompressor)? = gzip ? CompressionAlgorithm.gzip().decompressor : nil
        if let decompressor {
            decompressor.window = ByteBufferAllocator().buffer(capacity: 64 * 1024)
            try decompressor.startStream()
        }
        defer { try? decompressor?.finishStream() }
        var total: Int64 = 0
        do {
            for try await chunk in response.body {
                var chunk = chunk
                total += Int64(chunk.readableBytes)
                read(total)
                if let decompressor {
                    try chunk.decompressStream(with: decompressor) { output in
                        var output = output
                        try reader.feed(&output)
                        try entries(reader.takeEntries())
                        if reader.finished { throw TarReader.Stop() }
                    }
                } else {
                    try reader.feed(&chunk)
                    try entries(reader.takeEntries())
                }
                if reader.finished { break }
            }
        } catch is TarReader.Stop {
        } catch let error as TarError {
            throw LoginFailure("the layer \(layer.digest) is not a tar archive: \(error)")
        } catch let error as CompressNIOError {
            throw LoginFailure("the layer \(layer.digest) is not gzip: \(error)")
        }
    }
}
