import NeedletailPOSIX
import NeedletailHTTP
import NeedletailJS

/// The client runtime, written with NeedletailJS and served as `/_nt/runtime.js`.
///
/// What it does, and nothing more: forms marked `data-nt="form"` are sent in the background
/// (a failed send falls back to the normal POST, and an expired form reloads the page); the
/// page's channels are followed over server-sent events (`/_nt/events`), or with one long-poll
/// at a time (`/_nt/poll`) when the page asks for it (`data-nt-transport="poll"`), when the
/// browser has no EventSource, or when the first event does not arrive within 3 s (a proxy
/// that buffers); the HTML operations that come back (`replace`, `append`, `remove` an element
/// by id; never code) are applied; the next poll starts after a jittered pause, failures back
/// off exponentially with jitter (capped at 30 s); `#nt-status` says "live" or "reconnecting";
/// a page that reloads because its view is gone keeps what was typed into its forms;
/// a browser that refuses cookies sends the session id (`data-nt-s`) with its polls and adds
/// it to the site's links.
/// Without it every form and link still works.
public enum ClientRuntime {
    public static let program: JSProgram = {
        let status = JSExpr.name("status")
        let view = JSExpr.name("view")
        let channels = JSExpr.name("channels")
        let failures = JSExpr.name("failures")
        let t = JSExpr.name("t")
        let op = JSExpr.name("op")
        let target = JSExpr.name("target")
        let kind = JSExpr.name("kind")
        let r = JSExpr.name("r")
        let text = JSExpr.name("text")
        let form = JSExpr.name("form")
        let event = JSExpr.name("event")
        let f = JSExpr.name("f")
        let v = JSExpr.name("v")
        let es = JSExpr.name("es")
        let heard = JSExpr.name("heard")
        let streams = JSExpr.name("streams")
        let timer = JSExpr.name("timer")
        let math = JS.Math
        let backoff = JSExpr.name("backoff")
        let sid = JSExpr.name("sid")
        let a = JSExpr.name("a")
        let e = JSExpr.name("e")
        let d = JSExpr.name("d")
        let saved = JSExpr.name("saved")
        let forms = JSExpr.name("forms")
        let i = JSExpr.name("i")
        // Fields whose value is never kept across a reload (the page's own, files, secrets).
        let notKept: JSExpr = "hidden file password submit reset button checkbox radio"
        func kept(_ field: JSExpr) -> JSExpr { field.name && !notKept.includes(field.type) }
        return JSProgram {
            Const("status", JS.document.getElementById("nt-status"))
            If(status === nil) { Return() }
            Const("view", status.dataset.ntView)
            Let("channels", status.dataset.ntChannels)
            Let("failures", 0)
            // Whether event streams have worked here (after a failure, a poll, then events again).
            Let("streams", false)
            // A browser that refuses cookies follows its session with the id in the URL. (Asked
            // by setting a cookie and reading it back: Chromium's navigator.cookieEnabled stays
            // true when its settings block cookies.)
            Let("sid", "")
            If(status.dataset.ntS) {
                Assign(JS.document.cookie, "nt_probe=1; SameSite=Lax")
                If(!JS.document.cookie.includes("nt_probe")) { Assign(sid, status.dataset.ntS) }
                Assign(JS.document.cookie, "nt_probe=; max-age=0")
            }
            // The page reloads (its view is gone: a 410, a new build took over): what the
            // visitor was typing into its forms is kept in this tab's sessionStorage, and put
            // back into the same forms of the new page, which they can then send.
            Function("reload") {
                Try("x") {
                    Const("saved", JSExpr.name("Array")())
                    ForOf("f", in: JS.document.querySelectorAll(formSelector)) {
                        Const("d", .object([:]))
                        ForOf("e", in: f.elements) {
                            If(kept(e)) { Assign(d[e.name], e.value) }
                        }
                        saved.push(d)
                    }
                    JS.sessionStorage.setItem("nt-drafts", JS.JSON.stringify(saved))
                } catch: {}
                JS.location.reload()
            }
            Try("x") {
                Const("saved", JS.JSON.parse(JS.sessionStorage.getItem("nt-drafts")))
                If(saved) {
                    JS.sessionStorage.removeItem("nt-drafts")
                    Const("forms", JS.document.querySelectorAll(formSelector))
                    For("i", from: 0, to: math.min(forms.length, saved.length)) {
                        ForOf("e", in: forms[i].elements) {
                            If(kept(e) && JS.Object.hasOwn(saved[i], e.name)) { Assign(e.value, saved[i][e.name]) }
                        }
                    }
                }
            } catch: {}
            Function("apply", "text") {
                Const("t", JS.document.createElement("template"))
                Assign(t.innerHTML, text)
                ForOf("op", in: t.content.querySelectorAll("template[data-nt-op]")) {
                    Const("target", JS.document.getElementById(op.dataset.ntTarget))
                    Const("kind", op.dataset.ntOp)
                    If(target === nil) { Continue }
                    If(kind === "replace") {
                        target.replaceWith(op.content.cloneNode(true))
                    }.elseIf(kind === "append") {
                        target.append(op.content.cloneNode(true))
                    }.elseIf(kind === "remove") {
                        target.remove()
                    }
                }
                Const("v", t.content.querySelector("template[data-nt-versions]"))
                If(v !== nil) { Assign(channels, v.dataset.ntVersions) }
                JSExpr.name("bind")(JS.document)
            }
            Function("url", "kind") {
                Return(
                    "/_nt/" + JSExpr.name("kind") + "?v=" + JS.encodeURIComponent(view) + "&c=" + JS.encodeURIComponent(channels)
                        + sid.ternary("&_s=" + sid, ""))
            }
            Function("backoff") {
                AddAssign(failures, 1)
                Assign(status.textContent, "reconnecting")
                Return(math.min(30000, 500 * math.pow(2, failures)) * (0.5 + math.random()))
            }
            Function("listen") {
                Const("es", JSExpr.new(JS.EventSource, JSExpr.name("url")("events")))
                Let("heard", false)
                Const(
                    "timer",
                    JS.setTimeout(
                        .function {
                            If(!heard) {
                                es.close()
                                JSExpr.name("poll")()
                            }
                        }, 3000))
                Assign(
                    es.onmessage,
                    .function("e") {
                        Assign(heard, true)
                        Assign(streams, true)
                        Assign(failures, 0)
                        Assign(status.textContent, "live")
                        JSExpr.name("apply")(JSExpr.name("e").data)
                    })
                // An error: one long-poll first, which sees what an EventSource cannot (a 410
                // from a process that does not know this page: reload), then events again.
                Assign(
                    es.onerror,
                    .function {
                        es.close()
                        JS.clearTimeout(timer)
                        JS.setTimeout(JSExpr.name("poll"), backoff())
                    })
                // The server hands over to a new build: come back at once, spread out.
                es.addEventListener(
                    "nt-reconnect",
                    .function {
                        es.close()
                        JS.clearTimeout(timer)
                        JS.setTimeout(JSExpr.name("poll"), math.random() * 250)
                    })
            }
            Function("poll") {
                Assign(status.textContent, "live")
                JS.fetch(JSExpr.name("url")("poll"), .object(["credentials": "same-origin", "cache": "no-store"]))
                    .then(
                        .function("r") {
                            If(r.status === 410) {
                                JSExpr.name("reload")()
                                Return(nil)
                            }
                            If(!r.ok) { Throw(JSExpr.new(JS.Error, r.status)) }
                            Return(r.text())
                        }
                    )
                    .then(
                        .function("text") {
                            If(text === nil) { Return() }
                            Assign(failures, 0)
                            JSExpr.name("apply")(text)
                            JS.setTimeout(streams.ternary(JSExpr.name("listen"), JSExpr.name("poll")), 50 + math.random() * 100)
                        }
                    )
                    .catch(.function { JS.setTimeout(JSExpr.name("poll"), backoff()) })
            }
            Function("submit", "event") {
                Const("form", event.currentTarget)
                event.preventDefault()
                JS.fetch(
                    form.action,
                    .object([
                        "method": "POST",
                        "body": JSExpr.new(JS.URLSearchParams, JSExpr.new(JS.FormData, form)),
                        "headers": .object(["X-Needletail": "1"]),
                        "credentials": "same-origin",
                    ])
                )
                .then(
                    .function("r") {
                        If(r.status === 410) {
                            JSExpr.name("reload")()
                        }.elseIf(r.ok) {
                            form.reset()
                        }.else {
                            form.submit()
                        }
                    }
                )
                .catch(.function { form.submit() })
            }
            Function("bind", "root") {
                ForOf("f", in: JSExpr.name("root").querySelectorAll(formSelector)) {
                    If(!f.ntBound) {
                        Assign(f.ntBound, true)
                        f.addEventListener("submit", JSExpr.name("submit"))
                    }
                }
                // Without cookies, this site's links carry the session (the server adds it
                // itself once it has seen the browser refuse the cookie). Only paths: "//host/…"
                // is another site, which must never see the id.
                If(sid) {
                    ForOf("a", in: JSExpr.name("root").querySelectorAll("a[href^=\"/\"]:not([href^=\"//\"]):not([href*=\"_s=\"])")) {
                        AddAssign(a.search, a.search.ternary("&", "") + "_s=" + sid)
                    }
                }
            }
            JSExpr.name("bind")(JS.document)
            If(status.dataset.ntTransport !== "poll" && JS.window.EventSource !== .undefined) {
                JSExpr.name("listen")()
            }.else {
                JSExpr.name("poll")()
            }
        }
    }()

    /// The forms the runtime sends in the background (and keeps across a reload).
    static let formSelector: JSExpr = "form[data-nt=form]"

    /// The runtime as served: the program inside a function called at once.
    public static let source: String = program.wrapped
}
