namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>Locates the repository and the gateway's build output for tests that run it as a child process.</summary>
public static class RepoPaths
{
    public static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TokenGateway.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("TokenGateway.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>src/TokenGateway/bin/{Configuration}/net10.0 for the configuration the tests were built with.</summary>
    public static string GatewayOutputDirectory()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        return Path.Combine(Root(), "src", "TokenGateway", "bin", configuration, "net10.0");
    }
}
