using System.Data.Common;
using System.Globalization;
using TokenGateway.Core.Teams;

namespace TokenGateway.Storage;

/// <summary>Reads a timestamp column in the form its provider stores it.</summary>
internal delegate DateTimeOffset TimestampColumn(DbDataReader reader, int ordinal);

/// <summary>
/// Row reading and keyset paging shared by the SQLite and PostgreSQL stores (both ADO.NET, so every command and reader
/// is a <see cref="DbCommand"/>/<see cref="DbDataReader"/>). The SQL text stays with each provider.
/// </summary>
internal static class StoreRows
{
    /// <summary>Largest page a list returns, whatever the caller asks for.</summary>
    public const int MaxPageSize = 1000;

    /// <summary>A timestamp stored as milliseconds since the Unix epoch (SQLite teams, keys and ledger events).</summary>
    public static readonly TimestampColumn UnixMilliseconds =
        static (reader, ordinal) => DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));

    /// <summary>A timestamp stored as round-trip ("O") text (SQLite policies and schemas).</summary>
    public static readonly TimestampColumn RoundtripText =
        static (reader, ordinal) => DateTimeOffset.Parse(reader.GetString(ordinal), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    /// <summary>A native timestamp column (PostgreSQL <c>timestamptz</c>).</summary>
    public static readonly TimestampColumn Native =
        static (reader, ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    /// <summary>The page size to ask for: at least 1, at most <see cref="MaxPageSize"/>.</summary>
    public static int ClampLimit(int limit) => Math.Clamp(limit, 1, MaxPageSize);

    /// <summary>Runs <paramref name="command"/> and maps its first row, or returns null when there is none.</summary>
    public static async Task<T?> ReadFirstAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken cancellationToken)
        where T : class
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? read(reader) : null;
    }

    /// <summary>Runs <paramref name="command"/> and maps every row.</summary>
    public static async Task<List<T>> ReadAllAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var items = new List<T>();
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(read(reader));
        }

        return items;
    }

    /// <summary>
    /// Reads one keyset page: <paramref name="command"/> selects up to <paramref name="limit"/> + 1 rows ordered by id
    /// after the cursor; the extra row only tells that a next page exists, whose cursor is the last returned id.
    /// </summary>
    public static async Task<Page<T>> ReadPageAsync<T>(
        DbCommand command, int limit, Func<DbDataReader, T> read, Func<T, string> id, CancellationToken cancellationToken)
    {
        var items = await ReadAllAsync(command, read, cancellationToken);
        if (items.Count <= limit)
        {
            return new Page<T>(items, null);
        }

        items.RemoveAt(items.Count - 1);
        return new Page<T>(items, id(items[^1]));
    }
}
