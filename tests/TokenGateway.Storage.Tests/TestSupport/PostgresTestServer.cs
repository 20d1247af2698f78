using System.Globalization;
using Npgsql;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>
/// The real PostgreSQL server the tests use (<c>.ci/services start</c>: 127.0.0.1:55432, user postgres, trust auth;
/// override with <c>TOKENGATEWAY_TEST_POSTGRES</c>). Each test class gets databases of its own, dropped afterwards.
/// </summary>
internal static class PostgresTestServer
{
    /// <summary>Connection string of the server's maintenance database.</summary>
    public static readonly string AdminConnectionString =
        Environment.GetEnvironmentVariable("TOKENGATEWAY_TEST_POSTGRES")
        ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres;Timeout=5;Pooling=false";

    private static readonly Lazy<string?> _unavailable = new(Probe);

    /// <summary>Why the PostgreSQL tests cannot run here, or null when the server answers.</summary>
    public static string? UnavailableReason => _unavailable.Value;

    /// <summary>Creates an empty database with a unique name; returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"tg_{prefix.ToLowerInvariant()}_{Guid.NewGuid():N}")[..Math.Min(63, prefix.Length + 36)];
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, Pooling = true, Timeout = 5 }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing whatever still uses it.</summary>
    public static async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Makes the database unreachable the way an outage looks to the gateway: new connections are refused and the
    /// open ones are terminated.
    /// </summary>
    public static async Task BlockAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var block = new NpgsqlCommand($"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false", connection);
        await block.ExecuteNonQueryAsync();
        await using var terminate = new NpgsqlCommand(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @name AND pid <> pg_backend_pid()", connection);
        terminate.Parameters.AddWithValue("name", name);
        await terminate.ExecuteNonQueryAsync();
    }

    /// <summary>Ends <see cref="BlockAsync"/>.</summary>
    public static async Task UnblockAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string? Probe()
    {
        try
        {
            using var connection = new NpgsqlConnection(AdminConnectionString);
            connection.Open();
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException or ArgumentException)
        {
            return $"PostgreSQL is not reachable ({ex.Message}); start it with `.ci/services start` " +
                "(127.0.0.1:55432) or set TOKENGATEWAY_TEST_POSTGRES to a server's connection string.";
        }
    }
}

/// <summary>A test that needs the real PostgreSQL server: skipped, with the reason, when none answers.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresTestServer.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// One database per test class on the real server (created on first use, dropped with the class), plus any extra
/// databases a test asks for; does nothing when the server is absent (the tests are skipped then).
/// </summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    private readonly List<string> _created = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _shared;

    /// <summary>The class's database (created on first call).</summary>
    public async Task<string> GetSharedAsync()
    {
        await _gate.WaitAsync();
        try
        {
            return _shared ??= await CreateCoreAsync("cls");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A further empty database for one test, dropped with the class.</summary>
    public async Task<string> CreateAsync(string prefix = "t")
    {
        await _gate.WaitAsync();
        try
        {
            return await CreateCoreAsync(prefix);
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var connectionString in _created)
        {
            await PostgresTestServer.DropDatabaseAsync(connectionString);
        }
    }

    private async Task<string> CreateCoreAsync(string prefix)
    {
        var connectionString = await PostgresTestServer.CreateDatabaseAsync(prefix);
        _created.Add(connectionString);
        return connectionString;
    }
}
