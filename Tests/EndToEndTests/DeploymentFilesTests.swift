import Foundation
import TestSupport
import Testing

/// The deployment files, checked with the tools that can run here (no Docker engine, no cluster):
/// `docker-compose config` (Debian's docker-compose) for the compose stack, `kubernetes-validate`
/// (PyPI, with the Kubernetes schemas it ships) for every manifest, and buildkit's Dockerfile
/// parser (PyPI `dockerfile`) plus rules for the Dockerfile. Images are not built here.
@Suite struct DeploymentFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every YAML document of `path` as JSON objects (PyYAML).
    static func documents(_ path: String) async throws -> [[String: Any]] {
        try await self.documents(at: Self.root.appendingPathComponent(path))
    }

    static func documents(at file: URL) async throws -> [[String: Any]] {
        let json = try await Command.run([
            "python3", "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            file.path,
        ])
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
    }

    @Test func composeFileIsValid() async throws {
        let output = try await Command.run(
            ["docker-compose", "-f", "docker-compose.yml", "config"], in: Self.root.appendingPathComponent("compose")
        )
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("compose-\(UUID()).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(output.utf8).write(to: file)
        let config = try #require(try await Self.documents(at: file).first)
        let services = try #require(config["services"] as? [String: [String: Any]])
        #expect(Set(services.keys) == ["postgres", "minio", "minio-bucket", "certs", "metadata", "blob", "gateway", "front"])
        #expect((services["gateway"]?["deploy"] as? [String: Any])?["replicas"] as? Int == 2)
        for name in ["postgres", "minio", "metadata", "blob", "gateway"] {
            #expect(services[name]?["healthcheck"] != nil, "\(name) has a health check")
        }
        for name in ["metadata", "blob", "gateway"] {
            let environment = try #require(services[name]?["environment"] as? [String: Any])
            #expect(environment["INTERNAL_TLS_CA"] != nil && environment["INTERNAL_TLS_CERT"] != nil, "\(name) uses internal TLS")
        }
        let blob = try #require(services["blob"]?["environment"] as? [String: Any])
        #expect(blob["STORAGE_S3_ENDPOINT"] as? String == "http://minio:9000")
        let ports = String(describing: services["front"]?["ports"] ?? [])
        #expect(ports.contains("8080"))
        #expect(Set((config["volumes"] as? [String: Any] ?? [:]).keys) == ["pgdata", "blobdata", "certs"])
    }

    @Test func kubernetesManifestsMatchTheSchemas() async throws {
        let directory = Self.root.appendingPathComponent("k8s")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 6)
        // cert-manager's resources have no schema in kubernetes-validate (CRDs): they are reported
        // as unknown kinds, never as invalid; everything else must pass in strict mode.
        let output = try await Command.run(
            ["kubernetes-validate", "--strict"] + files.map { directory.appendingPathComponent($0).path }
        )
        for line in output.split(separator: "\n") where !line.contains("passed for resource") {
            #expect(line.contains("Couldn't find schema for kind") && line.contains("cert-manager.io/v1"), "\(line)")
        }

        var kinds: [String: [[String: Any]]] = [:]
        for file in files {
            for document in try await Self.documents("k8s/" + file) {
                kinds[document["kind"] as? String ?? "", default: []].append(document)
            }
        }
        let deployments = kinds["Deployment"] ?? []
        #expect(deployments.count == 3)
        for deployment in deployments {
            let name = (deployment["metadata"] as? [String: Any])?["name"] as? String ?? ""
            let spec = deployment["spec"] as? [String: Any] ?? [:]
            let pod = (spec["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
            #expect((pod["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true, "\(name)")
            let container = try #require((pod["containers"] as? [[String: Any]])?.first)
            let security = container["securityContext"] as? [String: Any] ?? [:]
            #expect(security["readOnlyRootFilesystem"] as? Bool == true, "\(name)")
            #expect(security["allowPrivilegeEscalation"] as? Bool == false, "\(name)")
            #expect(container["livenessProbe"] != nil && container["readinessProbe"] != nil, "\(name)")
            let resources = container["resources"] as? [String: Any] ?? [:]
            #expect(resources["requests"] != nil && resources["limits"] != nil, "\(name)")
            #expect((container["envFrom"] as? [[String: Any]])?.count == 2, "\(name) reads the ConfigMap and the Secret")
            for kind in ["HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"] {
                #expect(kinds[kind]?.contains { ($0["metadata"] as? [String: Any])?["name"] as? String == name } == true, "\(kind) \(name)")
            }
        }
        // Only the gateway reaches metadata and blob.
        for name in ["pierone-metadata", "pierone-blob"] {
            let policy = try #require(kinds["NetworkPolicy"]?.first { ($0["metadata"] as? [String: Any])?["name"] as? String == name })
            let description = String(describing: policy)
            #expect(description.contains("pierone-gateway"))
            #expect(!description.contains("0.0.0.0/0"))
        }
        #expect(kinds["NetworkPolicy"]?.contains { ($0["metadata"] as? [String: Any])?["name"] as? String == "pierone-default-deny" } == true)
        // Pushes are one multi-GB request: the Ingress neither limits nor buffers bodies.
        let ingress = try #require(kinds["Ingress"]?.first)
        let annotations = (ingress["metadata"] as? [String: Any])?["annotations"] as? [String: String] ?? [:]
        #expect(annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0")
        #expect(annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off")
        #expect(!String(describing: ingress).contains("/metrics"))
    }

    @Test func dockerfileParsesAndFollowsTheRules() async throws {
        let json = try await Command.run([
            "python3", "-c",
            "import dockerfile, json, sys; print(json.dumps([[c.cmd, list(c.flags), list(c.value)] for c in dockerfile.parse_file(sys.argv[1])]))",
            Self.root.appendingPathComponent("compose/Dockerfile").path,
        ])
        let instructions = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[Any]])
        let known: Set<String> = ["FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                                  "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"]
        var stages: [String] = []
        var userOfLastStage: String?
        for instruction in instructions {
            let command = instruction[0] as? String ?? ""
            let flags = instruction[1] as? [String] ?? []
            let values = instruction[2] as? [String] ?? []
            #expect(known.contains(command), "unknown instruction \(command)")
            #expect(!values.isEmpty, "\(command) without arguments")
            if command == "FROM" {
                #expect(values.count == 3 && values[1].uppercased() == "AS", "every stage is named: \(values)")
                stages.append(values.last ?? "")
                userOfLastStage = nil
            }
            if command == "COPY", let from = flags.first(where: { $0.hasPrefix("--from=") }) {
                #expect(stages.dropLast().contains(String(from.dropFirst("--from=".count))), "COPY \(from) names an earlier stage")
            }
            if command == "USER" { userOfLastStage = values.first }
        }
        #expect(stages == ["build", "certs", "runtime"])
        #expect(userOfLastStage == "10001:10001", "the runtime image runs as a non-root user")
        #expect(json.contains("--static-swift-stdlib"))
    }
}
