namespace TokenGateway.Core.Tests.Fixtures;

/// <summary>Reads the golden wire-format fixtures from the source tree (found by walking up to TokenGateway.sln).</summary>
internal static class FixtureFiles
{
    private static readonly Lazy<string> _directory = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TokenGateway.sln")))
        {
            dir = dir.Parent;
        }

        return dir is null
            ? throw new InvalidOperationException("TokenGateway.sln not found above " + AppContext.BaseDirectory)
            : Path.Combine(dir.FullName, "tests", "TokenGateway.Core.Tests", "Fixtures");
    });

    public static string RepoRoot => Path.GetFullPath(Path.Combine(_directory.Value, "..", "..", ".."));

    public static byte[] Read(string name) => File.ReadAllBytes(Path.Combine(_directory.Value, name));
}
