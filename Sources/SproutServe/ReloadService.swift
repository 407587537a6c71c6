import Foundation
import Logging
import ServiceLifecycle

/// Looks for newer checkpoints in every served run and swaps them in (ModelSlot keeps the
/// old version serving when one fails to load).
struct ReloadService: Service {
    let service: InferenceService
    let interval: Double
    let logger: Logger

    func run() async throws {
        // Ends (rather than keeping the process alive) when SIGTERM starts the graceful shutdown.
        try await cancelWhenGracefulShutdown { await self.loop() }
    }

    func loop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            if Task.isCancelled { break }
            for name in service.order {
                let slot = service.slots[name]!
                do {
                    if let step = try slot.reloadIfNewer() {
                        service.metrics.setVersion(model: name, step: step)
                        logger.info("model \(name): now serving step \(step)")
                    }
                } catch {
                    logger.error("model \(name): newer checkpoint failed to load, still serving step \(slot.current.step): \(error)")
                }
            }
        }
    }
}
