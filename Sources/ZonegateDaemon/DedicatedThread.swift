import Foundation
import Synchronization

/// A thread of its own that runs jobs one at a time, in the order they come: the serial executor
/// of an actor whose calls block (the `Enforcer`'s netlink batches and conntrack dumps), and the
/// task executor of a task that computes for long (a policy compile, minutes for some policies
/// before the compiler was made fast). On the cooperative pool either would hold one of its few
/// threads (two on a 2-core host, one on a 1-core VM) and starve the reconciler's events, reloads
/// and shutdown. The thread ends once `finishWhenIdle` has been called and no job is left.
final class DedicatedThread: SerialExecutor, TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])
    /// Signalled once per job queued and once by `finishWhenIdle`: a wakeup that finds no job is
    /// the finishing one, since every job's signal follows its queueing.
    private let wakeups = DispatchSemaphore(value: 0)

    init(name: String, qualityOfService: QualityOfService) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.qualityOfService = qualityOfService
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        wakeups.signal()
    }

    /// Lets the thread end once the jobs queued so far have run: a compile's last act, an
    /// enforcer's deinit.
    func finishWhenIdle() {
        wakeups.signal()
    }

    private func loop() {
        while true {
            wakeups.wait()
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
            job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
        }
    }
}
