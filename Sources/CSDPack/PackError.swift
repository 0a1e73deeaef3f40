/// Why the packer refuses its input. The message names the file, tensor or
/// field at fault; `csdpack` prints it and exits non-zero without writing output.
public struct PackError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
