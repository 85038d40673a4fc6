// `import Needletail` brings what an application uses: pages (HTML, CSS, JavaScript), the HTTP
// values and the router, live pages, records, and the server with its addresses. The loop's
// and the buffers' internals (Connection, EventLoop, BufferPool…) stay in their modules.
@_exported import NeedletailHTML
@_exported import NeedletailJS
@_exported import NeedletailHTTP
@_exported import NeedletailLive
@_exported import NeedletailServer
@_exported import NeedletailStore
@_exported import NeedletailPOSIX
@_exported import NeedletailCompression
@_exported import struct NeedletailBytes.Chunks
@_exported import enum NeedletailLoop.SocketAddress
@_exported import struct NeedletailLoop.SocketError
@_exported import struct NeedletailLoop.LoopConfiguration
@_exported import enum NeedletailLoop.Waiting
@_exported import class NeedletailLoop.TLSContext
@_exported import struct NeedletailLoop.TLSError
@_exported import struct NeedletailLoop.TLSCertificate
