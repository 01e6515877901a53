using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// Every path that erases a subject erases the same things: a person's explicit opt-out and the same person declaring
/// sharing level disabled (an event without an instance) leave the same rows behind, and so do an instance's opt-out
/// and the instance declaring disabled. What is left is what belongs to other subjects, and aggregates.
/// </summary>
public sealed class ErasureParityTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    private const string Person = "parity-person";
    private const string Instance = "parity-instance";

    public enum Erasure
    {
        PersonOptOut,
        PersonSharingDisabled,
        InstanceOptOut,
        InstanceSharingDisabled,
    }

    [Theory]
    [InlineData(Erasure.PersonOptOut, Erasure.PersonSharingDisabled, false)]
    [InlineData(Erasure.PersonOptOut, Erasure.PersonSharingDisabled, true)]
    [InlineData(Erasure.InstanceOptOut, Erasure.InstanceSharingDisabled, false)]
    [InlineData(Erasure.InstanceOptOut, Erasure.InstanceSharingDisabled, true)]
    public async Task An_opt_out_and_sharing_disabled_of_the_same_subject_leave_the_same_rows_and_nothing_of_the_subject(Erasure optOut, Erasure disabled, bool rawEventsAgedOut)
    {
        var afterOptOut = await RowsLeftAsync(optOut, rawEventsAgedOut);
        var afterDisabled = await RowsLeftAsync(disabled, rawEventsAgedOut);

        Assert.Equal(afterOptOut, afterDisabled);
        var subjectTables = optOut == Erasure.PersonOptOut
            ? new[] { TableNames.Installations, TableNames.SupportRequests }
            : [TableNames.Instances, TableNames.InstanceDeadlines, TableNames.InstanceStatusHistory];
        var subjectMarks = optOut == Erasure.PersonOptOut
            ? new[] { ActivityStore.UserPrefix, ActivityStore.InstallationPrefix }
            : [ActivityStore.InstancePrefix, ActivityStore.FirstSeenPrefix, ActivityStore.GoneInactivePrefix];
        Assert.DoesNotContain(afterDisabled, r => subjectTables.Contains(r.Table));
        Assert.DoesNotContain(afterDisabled, r => r.Table == TableNames.Activity && subjectMarks.Any(p => r.RowKey.StartsWith(p, StringComparison.Ordinal)));
    }

    /// <summary>
    /// The rows left (table, keys) after a person used an installer script and a product instance, and then
    /// <paramref name="erasure"/>, with or without the raw events (and marks) aged out before it. Aggregates and the
    /// scheduler's rows are not compared.
    /// </summary>
    private async Task<SortedSet<(string Table, string PartitionKey, string RowKey)>> RowsLeftAsync(Erasure erasure, bool rawEventsAgedOut)
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        var product = host.CreateSegmentClient();
        await installer.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Installation Started", messageId: "parity-started", userId: Person, properties: new JsonObject { ["os"] = "ubuntu" }),
            Segment.Track("Installation Support", messageId: "parity-support", userId: Person, properties: new JsonObject { ["email"] = "help@example.com" }))), ct);
        await product.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", messageId: "parity-usage", userId: Person, properties: new JsonObject { ["instanceId"] = Instance, ["version"] = "2.0.0" })), ct);
        Assert.NotEmpty(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.NotEmpty(await host.Tables.RowsAsync(TableNames.SupportRequests));
        Assert.NotEmpty(await host.Tables.RowsAsync(TableNames.Instances));
        if (rawEventsAgedOut)
        {
            time.Advance(TimeSpan.FromDays(95));
            await host.Services.GetRequiredService<RetentionJob>().RunAsync(ct);
            Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        }

        var response = erasure switch
        {
            Erasure.PersonOptOut => await product.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = Person }), ct),
            Erasure.InstanceOptOut => await product.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["instanceId"] = Instance }), ct),
            Erasure.PersonSharingDisabled => await product.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", messageId: "parity-off", userId: Person, properties: new JsonObject { ["sharingLevel"] = "disabled" })), ct),
            _ => await product.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", messageId: "parity-off", userId: "someone-else", properties: new JsonObject { ["instanceId"] = Instance, ["sharingLevel"] = "disabled" })), ct),
        };
        response.EnsureSuccessStatusCode();

        var left = new SortedSet<(string, string, string)>();
        foreach (var (table, rows) in await host.Tables.AllRowsAsync())
        {
            if (table is TableNames.DailyStats or TableNames.Schedules)
            {
                continue;
            }

            foreach (var row in rows)
            {
                left.Add((table, row.PartitionKey, row.RowKey));
            }
        }

        return left;
    }
}
