import RackGatewayDB

enum ToolVersion {
    static let current = RackGatewayDB.toolVersion
}
