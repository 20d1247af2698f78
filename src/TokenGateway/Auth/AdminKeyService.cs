using TokenGateway.Core.Teams;

namespace TokenGateway.Auth;

/// <summary>
/// Holds the digest of the admin key: from <c>TOKENGATEWAY_ADMIN_KEY</c>, else the stored digest, else a key
/// generated on first start whose value is printed once to the console (only its digest is stored).
/// </summary>
internal sealed partial class AdminKeyService(IConfiguration configuration, ITeamStore store, ILogger<AdminKeyService> logger) : IHostedService
{
    private const string SettingName = "admin_key_sha256";
    private string? _digest;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var configured = configuration["TOKENGATEWAY_ADMIN_KEY"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            _digest = ApiKeys.Hash(configured.Trim());
            return;
        }

        _digest = await store.GetSettingAsync(SettingName, cancellationToken);
        if (_digest is not null)
        {
            LogUsingStoredAdminKey(logger);
            return;
        }

        var key = "tga-" + ApiKeys.Generate()[ApiKeys.Prefix.Length..];
        _digest = ApiKeys.Hash(key);
        await store.SetSettingAsync(SettingName, _digest, cancellationToken);

        // Deliberately not through the logger: the key is shown once on the console and never reaches log sinks.
        await Console.Out.WriteLineAsync(
            $"TokenGateway generated an admin key (shown once, only its hash is stored): {key}{Environment.NewLine}" +
            "Set TOKENGATEWAY_ADMIN_KEY to choose your own.");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// A value that changes whenever the admin key changes (a hash of its digest): dashboard sessions carry it, so
    /// rotating the key ends every session.
    /// </summary>
    public string? SessionFingerprint => _digest is null ? null : ApiKeys.Hash("dashboard-session:" + _digest)[..32];

    /// <summary>True when <paramref name="presented"/> is the admin key.</summary>
    public bool IsAdminKey(string presented) =>
        _digest is not null && presented.Length is > 0 and <= 64 && ApiKeys.DigestEquals(ApiKeys.Hash(presented), _digest);

    [LoggerMessage(2400, LogLevel.Information, "Using the stored admin key digest (set TOKENGATEWAY_ADMIN_KEY to override)")]
    private static partial void LogUsingStoredAdminKey(ILogger logger);
}
