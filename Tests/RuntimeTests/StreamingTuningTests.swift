import Foundation
import NIOCore
import NIOPosix
import Runtime
import Synchronization
import Testing

@Suite struct StreamingTuningTests {
    /// glibc accepts the thresholds (the C shim once compiled to a no-op because it tested
    /// `__GLIBC__` before including a C library header).
    @Test func allocatorThresholdsApplyUnlessTheOperatorTunesMalloc() {
        #if os(Linux)
        #expect(AllocatorTuning.apply(environment: EnvironmentReader([:])))
        #endif
        for variable in AllocatorTuning.operatorSettings {
            #expect(!AllocatorTuning.apply(environment: EnvironmentReader([variable: "1"])), "\(variable)")
        }
    }

    /// After `caughtUp`, what was queued on the loop before it has run: a response writer's
    /// buffer has reached its channel, so the channel's writability is current.
    @Test func caughtUpWaitsForWhatWasQueuedBefore() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let ran = Mutex(false)
        loop.execute {
            Thread.sleep(forTimeInterval: 0.2)
            ran.withLock { $0 = true }
        }
        try await ResponsePacing.caughtUp(loop)
        #expect(ran.withLock { $0 })
        try await ResponsePacing.caughtUp(nil)
    }
}
