namespace TokenGateway.Storage.Postgres;

/// <summary>Time values as the PostgreSQL stores keep them: UTC (Npgsql writes only offset 0 to timestamptz), truncated like SQLite.</summary>
internal static class PostgresTime
{
    /// <summary>Millisecond precision, the precision the SQLite stores keep for teams, keys and ledger events.</summary>
    public static DateTimeOffset Milliseconds(DateTimeOffset value) => DateTimeOffset.FromUnixTimeMilliseconds(value.ToUnixTimeMilliseconds());

    /// <summary>Microsecond precision (timestamptz's), so a returned value equals the one read back later.</summary>
    public static DateTimeOffset Microseconds(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerMicrosecond), TimeSpan.Zero);
    }
}
