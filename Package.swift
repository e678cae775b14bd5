// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "pierone",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pierone", targets: ["PierOne"]),
        .executable(name: "pierone-fuzz", targets: ["PierOneFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Pure vocabulary shared by every service: OCI value types, DTOs, service protocols, errors.
        .target(
            name: "Contracts",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Shared/Contracts",
            swiftSettings: swiftSettings
        ),
        // glibc malloc thresholds (mallopt), which Glibc's Swift module does not export.
        .target(
            name: "CAllocator",
            path: "Shared/CAllocator"
        ),
        // Configuration, logging and HTTP server plumbing shared by the services.
        .target(
            name: "Runtime",
            dependencies: [
                "Contracts", "CAllocator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Shared/Runtime",
            swiftSettings: swiftSettings
        ),
        // The registry's operations over the Contracts protocols only: what spans metadata and
        // blobs (push, mount, pull, the layer scan, upload expiry) and the seams later features use.
        .target(
            name: "Registry",
            dependencies: [
                "Contracts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Registry",
            swiftSettings: swiftSettings
        ),
        // The clients of the internal API: `MetadataAPI` and `BlobAPI` over HTTP, for a gateway (or a
        // tool) whose services run elsewhere. Only the composition root builds them.
        .target(
            name: "InternalClients",
            dependencies: [
                "Contracts", "Runtime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Shared/InternalClients",
            swiftSettings: swiftSettings
        ),
        // System libcrypto for PKCS#7 (EC2 instance identity documents); swift-crypto has no PKCS#7.
        .systemLibrary(
            name: "CLibCrypto",
            path: "Services/CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Contracts", "Registry", "Runtime", "CLibCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Services/Gateway",
            exclude: ["Resources/README.md"],
            resources: [
                // Served by the gateway: embedded in the binary, so no bundle lookup at run time.
                .embedInCode("Resources/openapi.json"),
                .embedInCode("Resources/ui.html"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Metadata",
            dependencies: [
                "Contracts", "Runtime",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Services/Metadata",
            swiftSettings: swiftSettings
        ),
        // SHA-256/512 with a savable state (system libcrypto), so upload digests resume anywhere.
        .target(
            name: "CHashState",
            path: "Services/CHashState",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        // preadv2(RWF_NOWAIT): whether a blob read starts in the page cache, without disk I/O.
        .target(
            name: "CFileReads",
            path: "Services/CFileReads"
        ),
        .target(
            name: "Blob",
            dependencies: [
                "Contracts", "Runtime", "CHashState", "CFileReads",
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Services/Blob",
            swiftSettings: swiftSettings
        ),
        // The composition root: picks the stores and drivers from configuration and wires the
        // services together. Used by the executable and by the tests.
        .target(
            name: "PierOneApp",
            dependencies: [
                "Contracts", "Runtime", "Gateway", "Metadata", "Blob", "Registry", "InternalClients",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Services/PierOne/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PierOne",
            dependencies: [
                "PierOneApp", "Runtime", "Contracts",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Services/PierOne/CLI",
            swiftSettings: swiftSettings
        ),
        // The parsers of untrusted input as libFuzzer targets (`scripts/fuzz`), or a replayer of inputs.
        .executableTarget(
            name: "PierOneFuzz",
            dependencies: ["Gateway"],
            path: "Services/Fuzz",
            swiftSettings: swiftSettings
        ),
        // Real components for tests: a throwaway PostgreSQL cluster on a free loopback port.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        // MetadataAPI and BlobAPI in memory, for tests of the Registry layer and the handlers.
        .target(
            name: "InMemory",
            dependencies: [
                "Contracts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/InMemory",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ContractsTests",
            dependencies: ["Contracts"],
            path: "Tests/ContractsTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["Runtime"],
            path: "Tests/RuntimeTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "Contracts", "Registry", "InMemory", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/GatewayTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RegistryTests",
            dependencies: [
                "Registry", "Contracts", "Metadata", "Blob", "Runtime", "InMemory", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/RegistryTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetadataTests",
            dependencies: [
                "Metadata", "Contracts", "Runtime", "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/MetadataTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BlobTests",
            dependencies: [
                "Blob", "Contracts", "Runtime", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/BlobTests",
            swiftSettings: swiftSettings
        ),
        // The registry as users meet it: a live server on a free port, real clients (skopeo, oras).
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "PierOneApp", "Contracts", "Runtime", "Gateway", "Metadata", "Blob", "Registry", "InternalClients", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
