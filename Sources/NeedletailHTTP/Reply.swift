import Glibc
import Synchronization

/// A handler that waits: it may `await` (a database, a timer, a durable write) without
/// blocking its loop. It runs in a task on the loop that read the request, and so does every
/// nonisolated async function it calls (the loop is the task's executor preference): no
/// thread hop unless it awaits an actor of its own. A `ParameterError` it throws is a 400,
/// another error a 500 whose details go to the log; a handler whose client has gone sees its
/// task cancelled (`Task.isCancelled`, `CancellationError` from the waits that honour it).
public typealias AsyncHandler = @Sendable (Request) async throws -> Response

/// An async handler with its request, as a codec starts it: `produce()` gives the answer,
/// errors already turned into their status. A class: a response carries it by reference, so
/// that every response (the synchronous ones too) stays small to copy.
public final class PendingReply: Sendable {
    public let request: Request
    public let handler: AsyncHandler
    /// Milliseconds the handler may take; then the client gets a 503 and the task is cancelled.
    public let deadline: Int

    public init(request: Request, deadline: Int = Router.defaultDeadline, handler: @escaping AsyncHandler) {
        self.request = request
        self.deadline = deadline
        self.handler = handler
    }

    /// Runs the handler: its response, or the error page for what it threw and the text to log
    /// (nil when there is nothing to log). Nil response when the task was cancelled: the client
    /// has gone, or the deadline answered for it.
    public func produce() async -> (response: Response?, failure: String?) {
        do {
            return (try await handler(request), nil)
        } catch let e as ParameterError {
            return (Router.errorPage(.badRequest, detail: e.description), nil)
        } catch is CancellationError {
            return (nil, nil)
        } catch {
            if Task.isCancelled { return (nil, nil) }
            return (Router.errorPage(.internalServerError, detail: "Something went wrong on our side; it has been logged."),
                    "\(request.method.rawValue) \(request.path) failed: \(error)")
        }
    }

    /// The answer, waiting for it on this thread: for the blocking ways in (CGI, the libfcgi
    /// responder, tests). Never call it on an event loop's thread.
    public func waitForResponse() -> (response: Response, failure: String?) {
        let box = ResponseBox()
        let request = request, handler = handler, deadline = deadline
        let task = Task {
            let (response, failure) = await PendingReply(request: request, deadline: deadline, handler: handler).produce()
            box.set(response ?? Router.errorPage(.serviceUnavailable, detail: "The request was cancelled."), failure)
        }
        if let answer = box.wait(milliseconds: deadline) { return answer }
        task.cancel()
        return (Router.errorPage(.serviceUnavailable, detail: "The request took too long."), nil)
    }
}

/// A response handed from a task to a waiting thread (`PendingReply.waitForResponse`).
final class ResponseBox: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var answer: (response: Response, failure: String?)?

    init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func set(_ response: Response, _ failure: String?) {
        pthread_mutex_lock(&mutex)
        answer = (response, failure)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func wait(milliseconds: Int) -> (response: Response, failure: String?)? {
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let total = Int(end.tv_nsec) + (milliseconds % 1000) * 1_000_000
        end.tv_sec += milliseconds / 1000 + total / 1_000_000_000
        end.tv_nsec = total % 1_000_000_000
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while answer == nil {
            if pthread_cond_timedwait(&condition, &mutex, &end) == ETIMEDOUT { break }
        }
        return answer
    }
}

extension Response {
    /// A response that an async handler will make (see `Response.Body.pending`).
    public static func pending(_ reply: PendingReply) -> Response { Response(body: .pending(reply)) }

    /// This response, with a pending one waited for on this thread: for the blocking ways in
    /// (CGI, the libfcgi responder, tests), never on an event loop's thread. The text to log
    /// comes with it when the handler failed.
    public func waited() -> (response: Response, failure: String?) {
        guard case .pending(let reply) = body else { return (self, nil) }
        return reply.waitForResponse()
    }
}
