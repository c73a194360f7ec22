import Foundation

/// A thread of its own for one policy compile, as a task executor. A compile is CPU-bound for as
/// long as the policy makes it (minutes, for some policies before the compiler was made fast):
/// on the cooperative pool it would hold one of its few threads (two on a 2-core host, one on a
/// 1-core VM) and starve the reconciler's events, reloads and shutdown. Each compile gets a new
/// thread, so that a superseded compile which ignores its cancellation burns its own thread
/// until it returns, and never delays the next. The thread ends once its task has finished.
final class CompileThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `finished` are only touched under `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.qualityOfService = .utility
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Lets the thread end once the jobs queued so far have run: called as the task's last act.
    func finishWhenIdle() {
        condition.withLock {
            finished = true
            condition.signal()
        }
    }

    private func loop() {
        while true {
            let job: UnownedJob? = condition.withLock {
                while jobs.isEmpty && !finished { condition.wait() }
                return jobs.isEmpty ? nil : jobs.removeFirst()
            }
            guard let job else { return }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
