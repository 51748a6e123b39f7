import Foundation

/// Open MPI's C API, loaded with dlopen when a run is launched by `mpirun`, so that the package
/// builds, links and runs on machines without MPI. Open MPI's predefined handles
/// (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...) are the addresses of exported globals
/// (`ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum`, ...), so dlsym yields them as
/// they are; MPICH's integer handles would need another table, so only Open MPI is supported.
final class OpenMPILibrary: @unchecked Sendable {
    typealias Handle = UnsafeMutableRawPointer

    let world: Handle, float: Handle, byte: Handle, int64: Handle, sum: Handle, max: Handle

    typealias InitFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
    typealias FinalizeFunction = @convention(c) () -> Int32
    typealias CommQueryFunction = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias AllreduceFunction = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias AllgatherFunction = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    typealias AbortFunction = @convention(c) (Handle, Int32) -> Int32

    let initialize: InitFunction
    let finalize: FinalizeFunction
    let commRank: CommQueryFunction
    let commSize: CommQueryFunction
    let allreduce: AllreduceFunction
    let allgather: AllgatherFunction
    let abort: AbortFunction

    /// `MPI_IN_PLACE` in Open MPI's mpi.h.
    static var inPlace: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: 1) }

    /// Sonames tried in order: Open MPI 3, 4 and 5 all ship libmpi.so.40.
    static let libraryNames = ["libmpi.so.40", "libmpi.so"]

    init() throws {
        var handle: UnsafeMutableRawPointer?
        var reasons: [String] = []
        for name in Self.libraryNames {
            // RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols through the global scope.
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { break }
            reasons.append(dlerror().map { String(cString: $0) } ?? name)
        }
        guard let handle else {
            throw DistributedError("launched by mpirun, but Open MPI's library could not be loaded (\(reasons.joined(separator: "; "))); "
                                   + "install Open MPI (Debian: apt-get install openmpi-bin) or add its lib directory to LD_LIBRARY_PATH")
        }
        func symbol(_ name: String) throws -> Handle {
            guard let address = dlsym(handle, name) else {
                throw DistributedError("the MPI library found is not Open MPI (no symbol \(name)); calm supports Open MPI only")
            }
            return address
        }
        func function<F>(_ name: String, _ type: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: type) }
        world = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        byte = try symbol("ompi_mpi_byte")
        int64 = try symbol("ompi_mpi_int64_t")
        sum = try symbol("ompi_mpi_op_sum")
        max = try symbol("ompi_mpi_op_max")
        initialize = try function("MPI_Init", InitFunction.self)
        finalize = try function("MPI_Finalize", FinalizeFunction.self)
        commRank = try function("MPI_Comm_rank", CommQueryFunction.self)
        commSize = try function("MPI_Comm_size", CommQueryFunction.self)
        allreduce = try function("MPI_Allreduce", AllreduceFunction.self)
        allgather = try function("MPI_Allgather", AllgatherFunction.self)
        abort = try function("MPI_Abort", AbortFunction.self)
    }
}

/// A failure of the MPI layer itself (library, launch, an MPI call); one line.
public struct DistributedError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
