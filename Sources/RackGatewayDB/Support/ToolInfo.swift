/// The version of this tool, recorded in archives and reports.
public let toolVersion = "0.1.0"
