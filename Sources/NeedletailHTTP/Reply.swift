import Glibc
import NeedletailPOSIX
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

    /// The answer, waiting for it on this thread, which runs the handler's task meanwhile
    /// (`ThreadExecutor`): for the blocking ways in (CGI, the libfcgi responder, tests). Never
    /// call it on an event loop's thread.
    public func waitForResponse() -> (response: Response, failure: String?) {
        let executor = ThreadExecutor()
        let answer = AnswerSlot()
        let request = request, handler = handler, deadline = deadline
        let task = Task(executorPreference: executor) {
            let (response, failure) = await PendingReply(request: request, deadline: deadline, handler: handler).produce()
            answer.value = (response ?? Router.errorPage(.serviceUnavailable, detail: "The request was cancelled."), failure)
            executor.finish()
        }
        if executor.drain(milliseconds: deadline), let done = answer.value { return done }
        task.cancel()
        executor.handOff()
        return (Router.errorPage(.serviceUnavailable, detail: "The request took too long."), nil)
    }
}

/// The answer of a task that `waitForResponse` drains: written by the task before it calls
/// `finish()`, read by the drainer only after `drain` saw that (the executor's mutex orders them).
private final class AnswerSlot: @unchecked Sendable {
    var value: (response: Response, failure: String?)?
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
