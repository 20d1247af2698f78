namespace TokenGateway.Core.Tests.Optimization;

/// <summary>Locates the vendored corpus under <c>tests/corpus</c> of the repository (the folder holding TokenGateway.sln).</summary>
internal static class CorpusPaths
{
    private static readonly Lazy<string> _root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TokenGateway.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("TokenGateway.sln not found above the test binaries.");
    });

    public static string RepoRoot => _root.Value;

    public static string Corpus(params string[] parts) =>
        Path.GetFullPath(Path.Combine([RepoRoot, "tests", "corpus", .. parts]));
}
