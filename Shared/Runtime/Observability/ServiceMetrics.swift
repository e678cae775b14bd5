import Hummingbird
import Prometheus
import Synchronization

/// The process's Prometheus metrics, served at `/metrics` by every service.
///
/// One registry per process (a process is one scrape target). Label values come from fixed sets
/// (route templates, status classes, operation names, sink names), never from request paths, so
/// the number of series stays bounded whatever clients send.
package enum ServiceMetrics {
    package static let registry = PrometheusCollectorRegistry()

    /// Latency buckets from 1 ms to 2 minutes (blob transfers of GBs take minutes).
    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]

    private static func name(_ metric: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: metric, unitName: "", helpText: help)
    }

    // The registry validates names and labels on every lookup; the hot paths (every request,
    // every database and storage operation) look their handles up here instead.
    private static let counters = Mutex<[String: Counter]>([:])
    private static let gauges = Mutex<[String: Gauge]>([:])
    private static let histograms = Mutex<[String: DurationHistogram]>([:])

    private static func cached<Value: Sendable>(_ cache: borrowing Mutex<[String: Value]>, _ key: String, _ make: () -> Value) -> Value {
        if let value = cache.withLock({ $0[key] }) { return value }
        let value = make()
        cache.withLock { $0[key] = value }
        return value
    }

    // MARK: HTTP

    static func requests(service: String, route: String, method: String, status: String) -> Counter {
        Self.cached(Self.counters, "requests|\(service)|\(route)|\(method)|\(status)") {
            self.registry.makeCounter(
                descriptor: self.name("pierone_http_requests_total", "HTTP requests by route template, method and status class."),
                labels: [("service", service), ("route", route), ("method", method), ("status", status)]
            )
        }
    }

    static func requestDuration(service: String, route: String, method: String) -> DurationHistogram {
        Self.cached(Self.histograms, "duration|\(service)|\(route)|\(method)") {
            self.registry.makeDurationHistogram(
                descriptor: self.name(
                    "pierone_http_request_duration_seconds", "Time from the request to the last byte of the response."
                ),
                labels: [("service", service), ("route", route), ("method", method)], buckets: self.buckets
            )
        }
    }

    static func bytes(_ direction: String, service: String, route: String) -> Counter {
        Self.cached(Self.counters, "bytes|\(direction)|\(service)|\(route)") {
            self.registry.makeCounter(
                descriptor: self.name("pierone_http_\(direction)_bytes_total", "Body bytes \(direction == "request" ? "received" : "sent")."),
                labels: [("service", service), ("route", route)]
            )
        }
    }

    // MARK: Services

    /// Upload sessions stored and not yet committed, cancelled or expired (counted on storage).
    package static let uploadSessionsOpen: Gauge = registry.makeGauge(
        descriptor: name("pierone_upload_sessions_open", "Upload sessions started and not yet finished."), labels: []
    )

    /// Time of one storage driver operation.
    package static func storageDuration(driver: String, operation: String) -> DurationHistogram {
        Self.cached(Self.histograms, "storage|\(driver)|\(operation)") {
            self.registry.makeDurationHistogram(
                descriptor: self.name("pierone_storage_operation_duration_seconds", "Time of storage driver operations."),
                labels: [("driver", driver), ("operation", operation)], buckets: self.buckets
            )
        }
    }

    /// Storage operations that failed.
    package static func storageErrors(driver: String, operation: String) -> Counter {
        self.registry.makeCounter(
            descriptor: self.name("pierone_storage_operation_errors_total", "Storage driver operations that failed."),
            labels: [("driver", driver), ("operation", operation)]
        )
    }

    /// Metadata operations waiting for or using a database connection.
    package static func databaseInUse(backend: String) -> Gauge {
        Self.cached(Self.gauges, "inuse|\(backend)") {
            self.registry.makeGauge(
                descriptor: self.name(
                    "pierone_database_connections_in_use", "Metadata operations holding or waiting for a database connection."
                ),
                labels: [("backend", backend)]
            )
        }
    }

    /// Connections the pool may open.
    package static func databasePoolSize(backend: String) -> Gauge {
        self.registry.makeGauge(
            descriptor: self.name("pierone_database_pool_size", "Connections the metadata database pool holds."),
            labels: [("backend", backend)]
        )
    }

    /// Time of one metadata operation against the database.
    package static func databaseDuration(backend: String, operation: String) -> DurationHistogram {
        Self.cached(Self.histograms, "database|\(backend)|\(operation)") {
            self.registry.makeDurationHistogram(
                descriptor: self.name("pierone_database_operation_duration_seconds", "Time of metadata database operations."),
                labels: [("backend", backend), ("operation", operation)], buckets: self.buckets
            )
        }
    }

    /// Notifications waiting in the outbox for one sink.
    package static func notificationBacklog(sink: String) -> Gauge {
        self.registry.makeGauge(
            descriptor: self.name("pierone_notification_backlog", "Tag notifications waiting in the outbox, per sink."),
            labels: [("sink", sink)]
        )
    }

    /// Notification deliveries by result.
    package static func notificationDeliveries(sink: String, result: String) -> Counter {
        self.registry.makeCounter(
            descriptor: self.name("pierone_notification_deliveries_total", "Notification delivery attempts by result."),
            labels: [("sink", sink), ("result", result)]
        )
    }

    // MARK: The manifest cache

    /// The gateway's manifest cache: lookups answered from memory, lookups that asked the
    /// metadata, entries evicted for room, and what it holds.
    package struct CacheMetrics: Sendable {
        package let hits: Counter
        package let misses: Counter
        package let evictions: Counter
        package let bytes: Gauge
        package let entries: Gauge
        /// The blob cache only.
        package var refusals: Counter?
        package var collectingBytes: Gauge?
        package var shares: Counter?

        package func shared() { self.shares?.increment() }
        package func hit() { self.hits.increment() }
        package func refused() { self.refusals?.increment() }
        package func collecting(_ bytes: Int) { self.collectingBytes?.set(Double(bytes)) }
        package func miss() { self.misses.increment() }
        package func evicted(_ count: Int) { self.evictions.increment(by: Int64(count)) }
        package func size(bytes: Int, entries: Int) {
            self.bytes.set(Double(bytes))
            self.entries.set(Double(entries))
        }
    }

    package static func manifestCache() -> CacheMetrics {
        CacheMetrics(
            hits: self.registry.makeCounter(
                descriptor: self.name("pierone_manifest_cache_hits_total", "Manifest and blob lookups answered from the gateway's cache.")
            ),
            misses: self.registry.makeCounter(
                descriptor: self.name(
                    "pierone_manifest_cache_misses_total",
                    "Lookups the cache could not answer (not held, or not confirmed fresh within a second)."
                )
            ),
            evictions: self.registry.makeCounter(
                descriptor: self.name("pierone_manifest_cache_evictions_total", "Entries evicted to stay within MANIFEST_CACHE_MB.")
            ),
            bytes: self.registry.makeGauge(
                descriptor: self.name("pierone_manifest_cache_bytes", "Bytes the manifest cache accounts for.")
            ),
            entries: self.registry.makeGauge(descriptor: self.name("pierone_manifest_cache_entries", "Entries in the manifest cache.")),
            shares: self.registry.makeCounter(
                descriptor: self.name(
                    "pierone_manifest_cache_shared_total",
                    "Manifest and blob-link lookups answered by another request's metadata call for the same item, made at the same time."
                )
            )
        )
    }

    package static func blobCache() -> CacheMetrics {
        CacheMetrics(
            hits: self.registry.makeCounter(
                descriptor: self.name("pierone_blob_cache_hits_total", "Blob reads answered from the gateway's copies of small blobs.")
            ),
            misses: self.registry.makeCounter(
                descriptor: self.name(
                    "pierone_blob_cache_misses_total",
                    "Reads of blobs small enough to be held that found them not held: each read the blob service, or waited for a read of the same blob (pierone_blob_cache_shared_total)."
                )
            ),
            evictions: self.registry.makeCounter(
                descriptor: self.name("pierone_blob_cache_evictions_total", "Blobs evicted to stay within BLOB_CACHE_MB.")
            ),
            bytes: self.registry.makeGauge(
                descriptor: self.name("pierone_blob_cache_bytes", "Bytes the blob cache holds: buffer capacities (powers of two) and 160 per entry.")
            ),
            entries: self.registry.makeGauge(descriptor: self.name("pierone_blob_cache_entries", "Blobs in the blob cache.")),
            refusals: self.registry.makeCounter(
                descriptor: self.name(
                    "pierone_blob_cache_refused_total",
                    "Small blobs not held: everything held was used within 10 s, or reads and pushes in flight reached the bound."
                )
            ),
            collectingBytes: self.registry.makeGauge(
                descriptor: self.name("pierone_blob_cache_collecting_bytes", "Bytes reads and pushes in flight are collecting for the blob cache.")
            ),
            shares: self.registry.makeCounter(
                descriptor: self.name(
                    "pierone_blob_cache_shared_total",
                    "Misses answered by another request's read of the same blob instead of a read of their own."
                )
            )
        )
    }

    // MARK: Garbage collection

    /// Records the progress of the garbage collector: what a batch did, or (`finished`, with its
    /// time) the end of a collection.
    package static func recordGarbageCollection(
        reviewed: Int, unlinked: Int, deletedManifests: Int = 0, deletedBlobs: Int, deletedBytes: Int64, errors: Int,
        finished duration: Duration?, queued: Int? = nil
    ) {
        func counter(_ name: String, _ help: String) -> Counter {
            self.cached(self.counters, name) { self.registry.makeCounter(descriptor: self.name(name, help), labels: []) }
        }
        counter("pierone_gc_candidates_total", "Queue entries the garbage collector reviewed.").increment(by: Int64(reviewed))
        counter("pierone_gc_unlinked_total", "Links no manifest referenced, removed by the garbage collector.")
            .increment(by: Int64(unlinked))
        counter("pierone_gc_deleted_manifests_total", "Untagged manifests of deleted indexes and subjects the garbage collector removed.")
            .increment(by: Int64(deletedManifests))
        counter("pierone_gc_deleted_blobs_total", "Blobs the garbage collector deleted.").increment(by: Int64(deletedBlobs))
        counter("pierone_gc_deleted_bytes_total", "Bytes of the blobs the garbage collector deleted.").increment(by: deletedBytes)
        counter("pierone_gc_errors_total", "Failed collections and byte deletions.").increment(by: Int64(errors))
        guard let duration else { return }
        if let queued {
            self.cached(self.gauges, "pierone_gc_queue_depth") {
                self.registry.makeGauge(
                    descriptor: self.name("pierone_gc_queue_depth", "Candidates waiting in the garbage collector's queue."), labels: []
                )
            }.set(Double(queued))
        }
        counter("pierone_gc_runs_total", "Garbage collections run.").increment()
        self.cached(self.histograms, "pierone_gc_duration_seconds") {
            self.registry.makeDurationHistogram(
                descriptor: self.name("pierone_gc_duration_seconds", "Time of one garbage collection."), labels: [],
                buckets: self.buckets
            )
        }.record(duration)
    }

    /// Records what a retention run deleted.
    package static func recordRetention(deletedTags: Int, deletedManifests: Int) {
        func counter(_ name: String, _ help: String) -> Counter {
            self.cached(self.counters, name) { self.registry.makeCounter(descriptor: self.name(name, help), labels: []) }
        }
        counter("pierone_retention_runs_total", "Retention runs.").increment()
        counter("pierone_retention_deleted_tags_total", "Tags retention deleted.").increment(by: Int64(deletedTags))
        counter("pierone_retention_deleted_manifests_total", "Untagged manifests retention deleted.")
            .increment(by: Int64(deletedManifests))
    }

    // MARK: Serving

    /// `GET /metrics`: the Prometheus text exposition format.
    package static func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/metrics") { _, _ in
            let bytes = Self.registry.emitToBuffer()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .contentLength: String(bytes.count)],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
    }
}
