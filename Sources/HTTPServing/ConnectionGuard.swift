import NIOCore

/// The first handler on a connection's bytes, before the HTTP parser: a request head must
/// arrive whole within the head deadline and within `maxHeadBytes` (blank lines before it
/// count), and its body within the body deadline after it, so a client cannot hold a
/// connection by dripping a head, flooding line feeds or dripping a body.
/// It also answers refusals itself (413 from the head alone) and then drains and closes.
///
/// The responder tells it where requests start and end with ``Event``s, sent down the
/// pipeline with `channel.triggerUserOutboundEvent`.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Event: Sendable {
        /// The responder has a request: its head is in, its body is the parser's business.
        case requestStarted
        /// The responder has the whole body: the body deadline is over.
        case bodyReceived
        /// The response is written; the next head's deadline starts now.
        case responseSent
        /// Answer this (with `Connection: close`), discard what the client still sends, close.
        case refuse(status: Int, reason: String)
        /// Close once what was written is on the wire.
        case closeWhenWritten
    }

    private enum Phase {
        case awaitingHead
        case inRequest
        case refusing
    }

    private let maxHeadBytes: Int
    private let headTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private var phase = Phase.awaitingHead
    private var headBytes = 0
    /// Whether a byte other than CR or LF came since the head began (blank lines before a
    /// request line are skipped by the parser).
    private var sawContent = false
    /// Whether the last byte other than CR was LF: a second LF ends the head.
    private var lineEnded = false
    private var deadline: Scheduled<Void>?
    private let onInactive: @Sendable () -> Void

    init(maxHeadBytes: Int, headTimeout: TimeAmount, bodyTimeout: TimeAmount, onInactive: @escaping @Sendable () -> Void = {}) {
        self.maxHeadBytes = maxHeadBytes
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
        self.onInactive = onInactive
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { awaitHead(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if deadline == nil && phase == .awaitingHead { awaitHead(context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        onInactive()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .refusing:
            return
        case .inRequest:
            context.fireChannelRead(data)
        case .awaitingHead:
            let buffer = unwrapInboundIn(data)
            let ended = buffer.withUnsafeReadableBytes { scan($0) }
            if ended {
                awaitBody(context)
            } else if headBytes > maxHeadBytes {
                refuse(context, status: 431, reason: "request head too large")
                return
            }
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if phase == .refusing {
            context.read()
        } else {
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if phase == .refusing, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? Event else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        switch event {
        case .requestStarted:
            if phase == .awaitingHead { awaitBody(context) }
        case .bodyReceived:
            if phase == .inRequest {
                deadline?.cancel()
                deadline = nil
            }
        case .responseSent:
            if phase == .inRequest { awaitHead(context) }
        case .refuse(let status, let reason):
            if phase != .refusing { refuse(context, status: status, reason: reason) }
        case .closeWhenWritten:
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Counts `bytes` into the head; true when they hold its end (the blank line).
    private func scan(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes {
            headBytes += 1
            switch byte {
            case UInt8(ascii: "\n"):
                if lineEnded && sawContent { return true }
                lineEnded = true
            case UInt8(ascii: "\r"):
                break
            default:
                sawContent = true
                lineEnded = false
            }
            if headBytes > maxHeadBytes { return false }
        }
        return false
    }

    private func awaitHead(_ context: ChannelHandlerContext) {
        phase = .awaitingHead
        headBytes = 0
        sawContent = false
        lineEnded = false
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: headTimeout) { [self] in
            deadline = nil
            guard phase == .awaitingHead else { return }
            if headBytes == 0 {
                context.close(promise: nil)
            } else {
                refuse(context, status: 408, reason: "request head not received in time")
            }
        }
    }

    private func awaitBody(_ context: ChannelHandlerContext) {
        phase = .inRequest
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: bodyTimeout) { [self] in
            deadline = nil
            guard phase == .inRequest else { return }
            refuse(context, status: 408, reason: "request body not received in time")
        }
    }

    /// Answers `status` and half-closes; what the client still sends is read and dropped
    /// for a second (so the close does not reset the answer away), then the connection closes.
    private func refuse(_ context: ChannelHandlerContext, status: Int, reason: String) {
        phase = .refusing
        deadline?.cancel()
        deadline = nil
        let phrase = ServerResponse.reasonPhrase(status)
        let text = "\(reason)\n"
        let answer =
            "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\n"
            + "Connection: close\r\n\r\n\(text)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
        }
        context.read()
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            context.close(promise: nil)
        }
    }
}
