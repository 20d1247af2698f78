using System.Data.Common;
using TokenGateway.Core.Teams;

namespace TokenGateway.Storage.Teams;

/// <summary>Validation and row mapping shared by the SQLite and PostgreSQL team stores.</summary>
internal static class TeamRows
{
    /// <summary>Columns <see cref="ReadKey"/> expects, in order.</summary>
    public const string KeyColumns = "id, team_id, name, prefix, created_at, expires_at, revoked_at";

    private const int MaxNameLength = 200;

    /// <summary>Trims a team or key name and checks it is 1 to 200 characters.</summary>
    public static string ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        name = name.Trim();
        if (name.Length == 0 || name.Length > MaxNameLength)
        {
            throw new ArgumentException($"Name must be 1 to {MaxNameLength} characters.", nameof(name));
        }

        return name;
    }

    /// <summary>Maps a <c>id, name, created_at</c> row.</summary>
    public static Team ReadTeam(DbDataReader reader, TimestampColumn time) =>
        new(reader.GetString(0), reader.GetString(1), time(reader, 2));

    /// <summary>Maps a <see cref="KeyColumns"/> row.</summary>
    public static VirtualKey ReadKey(DbDataReader reader, TimestampColumn time) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetString(3),
        time(reader, 4),
        reader.IsDBNull(5) ? null : time(reader, 5),
        reader.IsDBNull(6) ? null : time(reader, 6));
}
