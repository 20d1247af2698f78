using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Storage.Postgres;

/// <summary>
/// Settings of the PostgreSQL storage (section <c>Postgres</c>); the connection string itself is
/// <c>ConnectionStrings:Postgres</c>, whose presence selects this backend.
/// </summary>
public sealed class PostgresStorageOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Postgres";

    /// <summary>Name of the connection string (<c>ConnectionStrings:Postgres</c>).</summary>
    public const string ConnectionStringName = "Postgres";

    /// <summary>Npgsql connection string; set from <c>ConnectionStrings:Postgres</c>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How long start-up keeps retrying an unreachable server before the host fails to start.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Monthly ledger partitions created ahead of the current month (at start and by the writer).</summary>
    [Range(0, 24)]
    public int PartitionMonthsAhead { get; set; } = 2;

    /// <summary>Timeout of one ledger batch command (COPY + insert + rollups).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Source-generated checks of <see cref="PostgresStorageOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class PostgresStorageOptionsValidator : IValidateOptions<PostgresStorageOptions>;
