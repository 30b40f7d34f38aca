// Kafka's own client-side translation of a group's offsets from ferry's checkpoints:
// org.apache.kafka.connect.mirror.RemoteClusterUtils.translateOffsets (connect-mirror-client,
// KIP-382), which reads `<remote alias>.checkpoints.internal` on the cluster it is given and keeps
// the last checkpoint per partition for the group (mm2-compat.md section 5.5).
//
// Compiled by tests/it/groups.rs at test time with javac against the harness's Kafka jars.
// Usage: java -cp 'libs/*:classes' TranslateOffsets <target bootstrap> <remote cluster alias> <group>
// Prints one line per partition: "<downstream topic> <partition> <offset>".

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public final class TranslateOffsets {
    private TranslateOffsets() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: TranslateOffsets <target bootstrap> <remote alias> <group>");
            System.exit(2);
        }
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", args[0]);
        Map<TopicPartition, OffsetAndMetadata> translated =
                RemoteClusterUtils.translateOffsets(props, args[1], args[2], Duration.ofSeconds(60));
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : translated.entrySet()) {
            System.out.println(e.getKey().topic() + " " + e.getKey().partition() + " "
                    + e.getValue().offset());
        }
    }
}
