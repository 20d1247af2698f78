using Microsoft.Extensions.Options;
using TokenGateway.Core.Teams;
using TokenGateway.Storage;

namespace TokenGateway.Auth;

/// <summary>
/// Holds the digest of the admin key: from <c>TOKENGATEWAY_ADMIN_KEY</c> (refused at start when weaker than
/// <see cref="AdminKeyStrength.MinimumBits"/>), else the stored digest, else a key generated on first start and written
/// once to <c>{Storage:DataDirectory}/admin-key</c> (mode 0600); the log names the file, never the key. Only the
/// digest is stored in the database.
/// </summary>
internal sealed partial class AdminKeyService(
    IConfiguration configuration, ITeamStore store, IOptions<StorageOptions> storage, ILogger<AdminKeyService> logger) : IHostedService
{
    public const string KeyFileName = "admin-key";
    private const string SettingName = "admin_key_sha256";
    private string? _digest;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var configured = configuration["TOKENGATEWAY_ADMIN_KEY"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var key = configured.Trim();
            if (AdminKeyStrength.Weakness(key) is { } weakness)
            {
                throw new InvalidOperationException(
                    $"TOKENGATEWAY_ADMIN_KEY is too weak: {weakness}. Use a random key, e.g. `openssl rand -base64 32`, " +
                    "or unset it to have the gateway generate one (docs/security.md, 'Admin key').");
            }

            _digest = ApiKeys.Hash(key);
            return;
        }

        _digest = await store.GetSettingAsync(SettingName, cancellationToken);
        if (_digest is not null)
        {
            LogUsingStoredAdminKey(logger);
            return;
        }

        var generated = "tga-" + ApiKeys.Generate()[ApiKeys.Prefix.Length..];
        var path = await WriteKeyFileAsync(generated, cancellationToken);
        _digest = ApiKeys.Hash(generated);
        await store.SetSettingAsync(SettingName, _digest, cancellationToken);
        LogGeneratedAdminKey(logger, path);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// A value that changes whenever the admin key changes (a hash of its digest): dashboard sessions carry it, so
    /// rotating the key ends every session.
    /// </summary>
    public string? SessionFingerprint => _digest is null ? null : ApiKeys.Hash("dashboard-session:" + _digest)[..32];

    /// <summary>True when <paramref name="presented"/> is the admin key (full length, constant-time digest comparison).</summary>
    public bool IsAdminKey(string presented) =>
        _digest is not null && presented.Length > 0 && ApiKeys.DigestEquals(ApiKeys.Hash(presented), _digest);

    /// <summary>Writes the key to a new owner-only file (replacing any older one atomically); returns its path.</summary>
    private async Task<string> WriteKeyFileAsync(string key, CancellationToken cancellationToken)
    {
        var directory = Path.GetFullPath(storage.Value.DataDirectory);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, KeyFileName);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600 from creation, never wider
        }

        try
        {
            await using (var file = new FileStream(temp, fileOptions))
            await using (var writer = new StreamWriter(file))
            {
                await writer.WriteLineAsync(key.AsMemory(), cancellationToken);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }

        return path;
    }

    [LoggerMessage(2400, LogLevel.Information, "Using the stored admin key digest (set TOKENGATEWAY_ADMIN_KEY to override)")]
    private static partial void LogUsingStoredAdminKey(ILogger logger);

    [LoggerMessage(2401, LogLevel.Warning,
        "Generated an admin key and wrote it to {Path} (owner-only, shown nowhere else; only its hash is stored). Read it, keep it in a secret store, then delete the file. Set TOKENGATEWAY_ADMIN_KEY to choose your own.")]
    private static partial void LogGeneratedAdminKey(ILogger logger, string path);
}
