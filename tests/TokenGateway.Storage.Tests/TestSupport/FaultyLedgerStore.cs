using Microsoft.Data.Sqlite;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>Wraps a real store and injects faults: N failures, a delay per batch, or a closed gate.</summary>
internal sealed class FaultyLedgerStore(ILedgerStore inner) : ILedgerStore
{
    private readonly Lock _lock = new();
    private int _failuresLeft;
    private Func<Exception> _fault = () => new SqliteException("database is locked", 5);
    private TaskCompletionSource _gate = CreateOpenGate();

    public int Calls { get; private set; }

    public int FailedCalls { get; private set; }

    public TimeSpan Delay { get; set; }

    public void FailNext(int count, Func<Exception>? fault = null)
    {
        lock (_lock)
        {
            _failuresLeft = count;
            _fault = fault ?? _fault;
        }
    }

    /// <summary>Fails every call until <see cref="Recover"/>.</summary>
    public void FailAlways(Func<Exception>? fault = null) => FailNext(int.MaxValue, fault);

    public void Recover() => FailNext(0);

    /// <summary>Makes every call wait until <see cref="OpenGate"/>.</summary>
    public void CloseGate()
    {
        lock (_lock)
        {
            if (_gate.Task.IsCompleted)
            {
                _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public void OpenGate()
    {
        lock (_lock)
        {
            _gate.TrySetResult();
        }
    }

    public async Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken)
    {
        Task gate;
        Exception? fault = null;
        lock (_lock)
        {
            Calls++;
            gate = _gate.Task;
            if (_failuresLeft > 0)
            {
                _failuresLeft--;
                FailedCalls++;
                fault = _fault();
            }
        }

        await gate.WaitAsync(cancellationToken);
        if (Delay > TimeSpan.Zero)
        {
            await Task.Delay(Delay, cancellationToken);
        }

        if (fault is not null)
        {
            throw fault;
        }

        return await inner.WriteBatchAsync(events, cancellationToken);
    }

    private static TaskCompletionSource CreateOpenGate()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.SetResult();
        return gate;
    }
}
