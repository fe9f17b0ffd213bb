// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "rack-gateway-db",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "rack-gateway-db", targets: ["rack-gateway-db"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // C libraries: only the RGW* wrapper modules below import these.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibDeflate", providers: [.apt(["libdeflate-dev"])]),
        // libzstd for `backup --compress zstd` (zstd frames instead of gzip members).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // OpenSSL's libcrypto (libpq-dev already depends on it) for SHA-256 with the CPU's SHA
        // instructions: about 7x the speed of a portable implementation, on every archive byte.
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libcurl for S3 (HTTP with its built-in AWS SigV4 signing).
        .systemLibrary(name: "CLibCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        .target(name: "RGWPostgres", dependencies: ["CLibPQ"]),
        .target(name: "RGWCompression", dependencies: ["CZlib", "CLibDeflate", "CZstd", "CCrypto"]),
        .target(name: "RGWHTTP", dependencies: ["CLibCurl"]),
        // age encryption and minisign signatures over libcrypto's primitives.
        .target(name: "RGWCrypto", dependencies: ["CCrypto"]),
        .target(
            name: "RackGatewayDB",
            dependencies: [
                "RGWPostgres",
                "RGWCompression",
                "RGWHTTP",
                "RGWCrypto",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "rack-gateway-db",
            dependencies: [
                "RackGatewayDB",
                "RGWPostgres",
                "RGWCompression",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .testTarget(name: "RGWPostgresTests", dependencies: ["RGWPostgres", "TestSupport"]),
        .testTarget(
            name: "RackGatewayDBTests",
            dependencies: [
                "RackGatewayDB", "RGWPostgres", "RGWCompression", "RGWCrypto", "TestSupport", "rack-gateway-db",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tests that need no server, no network and no child process: they run in seconds.
        .testTarget(
            name: "RackGatewayDBUnitTests",
            dependencies: ["RackGatewayDB", "RGWPostgres", "RGWCompression", "RGWCrypto", "rack-gateway-db",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The throwaway PostgreSQL cluster and helpers shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: ["RGWPostgres", "RGWCompression", "RGWCrypto", "RackGatewayDB", "RGWHTTP", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
    ],
    swiftLanguageModes: [.v6]
)
