namespace TokenGateway.Core.Changes;

/// <summary>What changed in the shared state that replicas cache in process.</summary>
public enum ChangeKind
{
    /// <summary>A virtual key (revoked, expired early); <see cref="GatewayChange.Id"/> is the key id.</summary>
    Key,
    /// <summary>A stored policy; <see cref="GatewayChange.Id"/> is <c>scope:id</c> (<see cref="GatewayChange.Policy"/>).</summary>
    Policy,
    /// <summary>Anything may have changed (notifications were lost, e.g. after a reconnect): drop every cached entry.</summary>
    All,
}

/// <summary>One change notification.</summary>
public readonly record struct GatewayChange(ChangeKind Kind, string Id)
{
    /// <summary>The notification for a policy write at <paramref name="scope"/> / <paramref name="id"/>.</summary>
    public static GatewayChange Policy(Budgets.PolicyScope scope, string id) => new(ChangeKind.Policy, PolicyId(scope, id));

    /// <summary>The <see cref="Id"/> of a policy change.</summary>
    public static string PolicyId(Budgets.PolicyScope scope, string id) => scope.ToString().ToLowerInvariant() + ":" + id;
}

/// <summary>
/// Tells every replica's in-process caches that shared state changed: the caches subscribe, writers publish.
/// </summary>
/// <remarks>
/// Handlers run on the publishing replica at once (before <see cref="PublishAsync"/> returns) and on the others when the
/// notification arrives. Handlers must be cheap and must not throw: they only drop cache entries.
/// </remarks>
public interface IChangeNotifier
{
    /// <summary>Applies <paramref name="change"/> to this replica's caches and announces it to the others.</summary>
    ValueTask PublishAsync(GatewayChange change, CancellationToken cancellationToken);

    /// <summary>Registers a handler for every change (local and remote); dispose the result to unregister.</summary>
    IDisposable Subscribe(Action<GatewayChange> handler);
}

/// <summary>
/// Single-process <see cref="IChangeNotifier"/>: handlers run in this process only. Replicas without Redis rely on the
/// caches' refresh interval (<c>Changes:PollInterval</c>) instead.
/// </summary>
public class LocalChangeNotifier : IChangeNotifier
{
    private readonly Lock _gate = new();
    private Action<GatewayChange>[] _handlers = [];

    /// <inheritdoc />
    public virtual ValueTask PublishAsync(GatewayChange change, CancellationToken cancellationToken)
    {
        Dispatch(change);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public IDisposable Subscribe(Action<GatewayChange> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_gate)
        {
            _handlers = [.. _handlers, handler];
        }

        return new Subscription(this, handler);
    }

    /// <summary>Runs every handler for <paramref name="change"/>.</summary>
    protected void Dispatch(GatewayChange change)
    {
        foreach (var handler in Volatile.Read(ref _handlers))
        {
            handler(change);
        }
    }

    private void Unsubscribe(Action<GatewayChange> handler)
    {
        lock (_gate)
        {
            _handlers = [.. _handlers.Where(h => h != handler)];
        }
    }

    private sealed class Subscription(LocalChangeNotifier owner, Action<GatewayChange> handler) : IDisposable
    {
        public void Dispose() => owner.Unsubscribe(handler);
    }
}
