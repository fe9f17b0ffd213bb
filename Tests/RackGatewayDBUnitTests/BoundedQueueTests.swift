import Foundation
import Testing
@testable import RackGatewayDB

@Suite("BoundedQueue")
struct BoundedQueueTests {
    final class Token: @unchecked Sendable {}

    @Test func takenElementsAreNotRetainedByTheQueue() {
        let queue = BoundedQueue<Token>(capacity: 4)
        weak var weakToken: Token?
        do {
            let token = Token()
            weakToken = token
            queue.put(token)
            queue.put(Token())
            _ = queue.take()
        }
        #expect(weakToken == nil, "the queue kept a taken element alive (memory would grow with the database)")
    }

    @Test func putBlocksWhenFullAndCloseDrains() {
        let queue = BoundedQueue<Int>(capacity: 2)
        #expect(queue.put(1) && queue.put(2))
        let third = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            queue.put(3)
            third.signal()
        }
        #expect(third.wait(timeout: .now() + 0.3) == .timedOut, "put must wait while the queue is full")
        #expect(queue.take() == 1)
        #expect(third.wait(timeout: .now() + 5) == .success)
        queue.close()
        #expect(queue.take() == 2 && queue.take() == 3 && queue.take() == nil)
        #expect(!queue.put(4))
    }

    @Test func capacityZeroHandsOverOnlyWhenTaken() {
        let queue = BoundedQueue<Int>(capacity: 0)
        let handed = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            queue.put(7)
            handed.signal()
        }
        #expect(handed.wait(timeout: .now() + 0.3) == .timedOut, "put must wait until a taker has the item")
        #expect(queue.take() == 7)
        #expect(handed.wait(timeout: .now() + 5) == .success)
    }
}
