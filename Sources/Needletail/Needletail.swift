// `import Needletail` brings every public layer an application uses.
@_exported import NeedletailBytes
@_exported import NeedletailHTML
@_exported import NeedletailJS
@_exported import NeedletailLoop
@_exported import NeedletailServer
@_exported import NeedletailStore
@_exported import NeedletailWeb
