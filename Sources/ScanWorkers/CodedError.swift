/// An error that is a machine-readable code and a message naming the cause: what the worker layer
/// throws where the caller branches on the kind and shows the message as it is (`BindError`,
/// `TopologyError`, `InjectError`).
public struct CodedError<Code: RawRepresentable & Sendable & Equatable>: Error, Sendable, Equatable, CustomStringConvertible
where Code.RawValue == String {
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
