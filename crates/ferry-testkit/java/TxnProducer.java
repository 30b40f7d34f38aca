// A small transactional producer for ferry's tests: writes committed and aborted transactions
// with the real Java client, so tests get transaction markers, aborted ranges and (on 4.x with
// transaction.version=2, KIP-890) epoch bumps exactly as Kafka writes them.
//
// Compiled by ferry-testkit at test time with javac against the Kafka jars of the cluster's
// version (kafka-clients API only: KafkaProducer#initTransactions / beginTransaction /
// commitTransaction / abortTransaction).
//
// Usage: java -cp 'libs/*:classes' TxnProducer <client.properties> <topic> <transactional.id> <plan>
// The plan file has one command per line:
//   begin
//   send<TAB><key or the NUL marker \u0018><TAB><value>
//   commit
//   abort
// For every record acknowledged it prints "<txn index> <partition> <offset>" on stdout; after
// each commit or abort it prints "end <txn index> commit|abort".

import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public final class TxnProducer {
    private static final String NULL_MARKER = "\u0018";

    private TxnProducer() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: TxnProducer <client.properties> <topic> <transactional.id> <plan>");
            System.exit(2);
        }
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        String topic = args[1];
        props.put("transactional.id", args[2]);
        props.putIfAbsent("enable.idempotence", "true");
        props.putIfAbsent("acks", "all");
        List<String> plan = Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8);

        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();
            int txn = -1;
            List<Future<RecordMetadata>> pending = new ArrayList<>();
            for (String line : plan) {
                if (line.isEmpty()) {
                    continue;
                }
                if (line.equals("begin")) {
                    txn++;
                    producer.beginTransaction();
                } else if (line.startsWith("send\t")) {
                    String[] parts = line.split("\t", 3);
                    String key = parts[1].equals(NULL_MARKER) ? null : parts[1];
                    String value = parts.length > 2 ? parts[2] : "";
                    pending.add(producer.send(new ProducerRecord<>(topic, key, value)));
                } else if (line.equals("commit") || line.equals("abort")) {
                    producer.flush();
                    for (Future<RecordMetadata> f : pending) {
                        RecordMetadata m = f.get();
                        System.out.println(txn + " " + m.partition() + " " + m.offset());
                    }
                    pending.clear();
                    if (line.equals("commit")) {
                        producer.commitTransaction();
                    } else {
                        producer.abortTransaction();
                    }
                    System.out.println("end " + txn + " " + line);
                } else {
                    throw new IllegalArgumentException("bad plan line: " + line);
                }
            }
            System.out.flush();
        }
    }
}
