using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Tests.Optimization;

/// <summary>Validity rules providers enforce on a conversation: tool pairs intact, starts on a user turn.</summary>
internal static class ConversationInvariants
{
    public static void AssertValid(LlmRequest request)
    {
        var messages = request.Body["messages"]!.AsArray().Select(m => m!.AsObject()).ToList();
        var conversation = messages.Where(m => (string?)m["role"] is not ("system" or "developer")).ToList();
        Assert.NotEmpty(conversation);
        Assert.Equal("user", (string?)conversation[0]["role"]);
        if (request.Dialect.IsAnthropic())
        {
            Assert.DoesNotContain(conversation[0]["content"] is JsonArray b ? b : [], x => (string?)x?["type"] == "tool_result");
            for (var i = 0; i < conversation.Count; i++)
            {
                var uses = Blocks(conversation[i], "tool_use").Select(b => (string)b["id"]!).ToList();
                if (uses.Count > 0)
                {
                    Assert.True(i + 1 < conversation.Count, "tool_use without results");
                    var results = Blocks(conversation[i + 1], "tool_result").Select(b => (string)b["tool_use_id"]!).ToList();
                    Assert.Equal(uses.Order(), results.Order());
                }

                if (i > 0)
                {
                    Assert.NotEqual((string?)conversation[i - 1]["role"], (string?)conversation[i]["role"]);
                }
            }

            return;
        }

        var open = new HashSet<string>();
        foreach (var message in conversation)
        {
            var role = (string?)message["role"];
            if (role == "tool")
            {
                Assert.True(open.Remove((string)message["tool_call_id"]!), "tool result without its call");
                continue;
            }

            Assert.Empty(open); // every call answered before the next non-tool message
            if (message["tool_calls"] is JsonArray calls)
            {
                foreach (var call in calls)
                {
                    open.Add((string)call!["id"]!);
                }
            }
        }
    }

    private static IEnumerable<JsonObject> Blocks(JsonObject message, string type) =>
        message["content"] is JsonArray blocks ? blocks.OfType<JsonObject>().Where(b => (string?)b["type"] == type) : [];
}
