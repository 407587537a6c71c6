import ArgumentParser
import Foundation
import Logging
import Sprout
import SproutServe

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve runs' newest checkpoints over HTTP: a JSON API (TensorFlow Serving's shape) and a web page.",
        discussion: """
        Examples:
          sprout serve runs/demo                          # http://127.0.0.1:8080/
          sprout serve runs/plants runs/cifar --port 9000 --max-batch 32
          sprout serve runs/demo --host 0.0.0.0 --api-key "$KEY"
        Endpoints: GET / (web page), GET /healthz, GET /metrics (Prometheus), GET /v1/models,
        GET /v1/models/NAME, POST /v1/models/NAME:classify (PNG/JPEG body or multipart upload; ?k=5),
        POST /v1/models/NAME:predict ({"instances": [...]}). NAME is the run directory's name.
        A newer checkpoint in a run directory is loaded in the background and swapped in;
        SIGTERM or Ctrl-C finishes the requests in flight, then exits.
        """)

    @Argument(help: "Run directories written by sprout train.") var runDirs: [String]
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Bearer token required on every endpoint but /healthz.") var apiKey: String?
    @Flag(help: "Allow a non-loopback --host without --api-key.") var allowUnauthenticated = false
    @Option(help: "Most images in one forward pass.") var maxBatch = 16
    @Option(help: "Most milliseconds a request waits for others to share its forward pass.") var maxWaitMs: Double = 5
    @Option(help: "Threads running forward passes at once, each with an equal share of --threads.") var inferenceThreads = 1
    @Option(help: "Largest request body, in bytes.") var maxBodyBytes = 10 << 20
    @Option(help: "Seconds between looks for newer checkpoints.") var reloadInterval: Double = 5
    @Flag(help: "Use the live weights even when a checkpoint has EMA weights.") var noEma = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() async throws {
        try threadOptions.apply()
        guard !runDirs.isEmpty else { throw ValidationError("give at least one run directory") }
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(host)
        if !loopback && apiKey == nil && !allowUnauthenticated {
            throw ValidationError("--host \(host) is reachable from other machines: give --api-key KEY, or --allow-unauthenticated to serve without one")
        }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard inferenceThreads >= 1 else { throw ValidationError("--inference-threads must be at least 1") }
        let slots = try runDirs.map { try ModelSlot(runDirectory: $0, useEMA: !noEma) }
        let service = try InferenceService(slots: slots, maxBatch: maxBatch, maxWaitMilliseconds: maxWaitMs,
                                           inferenceThreads: inferenceThreads)
        var options = ServeOptions()
        (options.host, options.port, options.apiKey) = (host, port, apiKey)
        (options.maxBodyBytes, options.reloadIntervalSeconds) = (maxBodyBytes, reloadInterval)
        var logger = Logger(label: "sprout.serve")
        logger.logLevel = .info
        for s in slots {
            print("serving \(s.name): \(s.current.manifest.model.name) step \(s.current.step) from \(s.runDirectory)")
        }
        let app = SproutHTTPServer.application(service: service, options: options, logger: logger) { channel in
            print("listening on http://\(host):\(channel.localAddress?.port ?? port)/")
        }
        try await app.runService()
        service.batcher.stop()
        print("stopped")
    }
}
